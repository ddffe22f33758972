-- sqlite3 workload for tests/workloads/dynamic.test.ts
.headers on
.mode list
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT, price REAL, qty INTEGER);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO items(name, category, price, qty)
SELECT 'item' || i, CASE i % 4 WHEN 0 THEN 'tools' WHEN 1 THEN 'food' WHEN 2 THEN 'toys' ELSE 'books' END,
       round((i * 37 % 1000) / 7.0, 2), i * 13 % 17
FROM n;
INSERT INTO items(name, category, price, qty) VALUES ('special', NULL, 0.1, 0), ('quote''s', 'food', 1e10, 1);
CREATE INDEX idx_cat ON items(category);
SELECT count(*), sum(qty), round(avg(price), 6), min(price), max(price), total(price * qty) FROM items;
SELECT category, count(*) AS n, sum(qty) AS q, round(avg(price), 4) AS avgp, max(name) AS mx
  FROM items GROUP BY category HAVING n > 1 ORDER BY category NULLS FIRST;
SELECT name, price FROM items WHERE price BETWEEN 50 AND 51 ORDER BY price DESC, name LIMIT 5;
SELECT group_concat(name, ';') FROM (SELECT name FROM items WHERE qty = 16 ORDER BY id LIMIT 6);
UPDATE items SET price = price * 1.1 WHERE category = 'toys';
DELETE FROM items WHERE qty = 0;
SELECT changes(), total_changes(), count(*) FROM items;
SELECT category, printf('%.3f', sum(price)), printf('%08.2e', max(price)) FROM items GROUP BY 1 ORDER BY 1;
SELECT a.category, b.category, count(*) FROM items a JOIN items b ON a.qty = b.qty AND a.id < b.id
  WHERE a.id < 60 AND b.id < 60 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT name, qty, rank() OVER (PARTITION BY category ORDER BY qty DESC, id) AS r
  FROM items WHERE id % 50 = 0 ORDER BY category, r;
SELECT typeof(1), typeof(1.5), typeof('x'), typeof(NULL), typeof(x'00'), 7 / 2, 7 / 2.0, 7 % 3, -7 / 2, 1e308 * 10;
SELECT hex(x'00ff'), length(zeroblob(10)), upper('abc'), substr('hello', 2, 3), replace('aaa', 'a', 'bb'),
       instr('hello', 'll'), trim('  x  '), abs(-9223372036854775807), 9223372036854775807 + 0;
SELECT json_object('a', 1, 'b', json_array(1, 2.5, 'x')), json_extract('{"k":[10,20]}', '$.k[1]');
BEGIN; INSERT INTO items(name) VALUES ('rolled back'); ROLLBACK;
SELECT count(*) FROM items WHERE name = 'rolled back';
PRAGMA integrity_check;
