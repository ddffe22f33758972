-- Lua 5.4 workload for tests/workloads/dynamic.test.ts: deterministic output
-- only (no addresses, times or random seeds).

local out = {}
local function say(...) local t = table.pack(...) for i = 1, t.n do t[i] = tostring(t[i]) end print(table.concat(t, " ")) end

-- strings
local s = "The quick brown fox jumps over the lazy dog"
say(#s, s:upper(), s:lower():rep(2, "|"))
say(s:find("fox"), s:match("(%a+) dog"), s:gsub("o", "0"))
for w in s:gmatch("%a+") do out[#out + 1] = w:reverse() end
say(table.concat(out, ","))
say(string.byte("ABC", 1, -1), string.char(72, 105), ("%q"):format("a\nb\"c\0"))
say(("x"):rep(3), s:sub(5, 9), s:sub(-3), #s:sub(100))
say(string.pack("<i4d", 7, 1.5):byte(1, -1))
say(utf8.char(72, 228, 8364, 128512), utf8.len("häll€"))

-- numbers and string.format of floats
say(7 // 2, 7 % 3, -7 // 2, -7 % 3, 7 / 2, 2^10, 1e300 * 1e10, -(0/0) ~= -(0/0))
say(math.maxinteger, math.mininteger, math.maxinteger + 1 == math.mininteger, 3 | 5, 6 & 3, 1 << 62, ~0)
say(math.type(1), math.type(1.0), math.type("1"), math.tointeger(3.0), 10 == 10.0)
for _, x in ipairs({0.1, 1/3, 2/3, 1e-300, 123456789.123456789, math.pi, -0.0, 1e21, 2^53 + 1, 5e-324}) do
  say(string.format("%.17g|%.3f|%e|%g|%a|%5.1f|%-10.2e|", x, x, x, x, x, x, x), tostring(x))
end
say(math.floor(-3.5), math.ceil(-3.5), math.abs(-2^63), math.fmod(7, -3), math.fmod(-7, 3), math.ult(1, -1))
say(string.format("%.14g %.14g %.14g %.14g %.14g", math.sin(1), math.cos(2), math.exp(3), math.log(10), math.sqrt(2)))
say(string.format("%.14g %.14g %.14g", math.atan(1, 2), math.log(8, 2), 10 ^ 0.5))
say(tonumber("0x1p4"), tonumber("  12  "), tonumber("1e2"), tonumber("z", 36), tonumber("10", 2), tonumber("abc"))
say(string.format("%d %5d %-5d| %x %X %o %c %s %10.4s|", 42, 42, 42, 255, 255, 8, 65, "str", "truncated"))

-- tables, sorting, metatables
local t = {}
for i = 1, 200 do t[i] = (i * 7919) % 211 end
table.sort(t)
say(t[1], t[100], t[200], #t)
table.sort(t, function(a, b) return a > b end)
say(t[1], t[100], t[200])
table.insert(t, 1, -1); table.remove(t); say(t[1], #t, select("#", table.unpack(t, 1, 10)))
local words = {}
for w in ("pear apple fig banana cherry date"):gmatch("%a+") do words[#words + 1] = w end
table.sort(words, function(a, b) return #a < #b or (#a == #b and a < b) end)
say(table.concat(words, " "), table.move({1, 2, 3}, 1, 3, 2)[3])
local V = {}
V.__index = V
V.__add = function(a, b) return setmetatable({x = a.x + b.x, y = a.y + b.y}, V) end
V.__tostring = function(v) return "(" .. v.x .. "," .. v.y .. ")" end
V.__eq = function(a, b) return a.x == b.x and a.y == b.y end
V.__lt = function(a, b) return a.x < b.x end
V.__len = function() return 2 end
V.__call = function(v, k) return v.x * k end
local a, b = setmetatable({x = 1, y = 2}, V), setmetatable({x = 3, y = 4}, V)
say(tostring(a + b), a == b, a < b, #a, a(10), rawequal(a, a), rawlen({1, 2}))
local counts = setmetatable({}, {__index = function() return 0 end})
for c in ("mississippi"):gmatch(".") do counts[c] = counts[c] + 1 end
local keys = {}
for k in pairs(counts) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do io.write(k, "=", counts[k], " ") end
print()

-- closures
local function counter(start)
  local n = start
  return function(step) n = n + (step or 1); return n end
end
local c1, c2 = counter(10), counter(100)
c1(); c1(5); c2()
say(c1(), c2(0))
local fns = {}
for i = 1, 5 do fns[i] = function() return i * i end end
say(fns[1](), fns[3](), fns[5]())
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local memo = setmetatable({}, {__mode = "k"})
say(fib(24), select(2, pcall(error, {code = 42})).code, select(2, pcall(error, "msg", 0)))
say(pcall(function() local x = nil; return x.field end))

-- coroutines
local gen = coroutine.wrap(function(n)
  for i = 1, n do coroutine.yield(i * i) end
  return "done"
end)
local seq = {}
for _ = 1, 6 do seq[#seq + 1] = tostring(gen(5)) end
say(table.concat(seq, " "))
local co = coroutine.create(function(x, y)
  local z = coroutine.yield(x + y)
  local w = coroutine.yield(z * 2)
  return w, "end"
end)
say(coroutine.resume(co, 1, 2)); say(coroutine.resume(co, 10)); say(coroutine.resume(co, "w")); say(coroutine.resume(co))
say(coroutine.status(co), coroutine.isyieldable())
local producer = coroutine.wrap(function() for w in ("alpha beta gamma"):gmatch("%a+") do coroutine.yield(w) end end)
say(producer(), producer(), producer())

-- goto, integer loops, varargs, string buffers
local acc = 0
for i = 10, 1, -3 do acc = acc * 10 + i end
say(acc)
do local i = 0 ::top:: i = i + 1 if i < 5 then goto top end say("goto", i) end
local function va(...) return select("#", ...), ... end
say(va(nil, 2, nil))
local parts = {}
for i = 1, 1000 do parts[#parts + 1] = string.format("%04d", (i * 37) % 1000) end
local big = table.concat(parts)
local h = 0
for i = 1, #big do h = (h * 31 + big:byte(i)) % 4294967296 end
say(#big, h)

-- io: write a file, read it back, remove it
local name = "lua-io-test.txt"
local f = assert(io.open(name, "w"))
f:write("line 1\n", 2, " line\n", string.format("%.3f\n", 1 / 7))
for i = 1, 100 do f:write(i, i % 10 == 0 and "\n" or " ") end
f:close()
f = assert(io.open(name, "r"))
local lines = {}
for l in f:lines() do lines[#lines + 1] = l end
f:close()
say(#lines, lines[1], lines[3], lines[#lines])
f = assert(io.open(name, "rb"))
say(f:seek("end"), f:seek("set", 2), f:read(4), f:read("n"), f:read("l"))
f:close()
say(os.remove(name), io.open(name) == nil, select(2, os.remove(name)) ~= nil)
say(type(os.time()), type(os.clock()), os.getenv("TSVM_LUA_VAR"), os.getenv("SURELY_NOT_SET"))
say(os.date("!%Y-%m-%d %H:%M:%S", 86400 * 365), os.time({year = 2000, month = 1, day = 1, hour = 12}) ~= nil)
io.write("finished\n")
os.exit(3)
