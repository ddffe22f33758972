# Scripting and calculation: sed awk grep egrep fgrep bc dc factor date cal
# getopt.
. "$(dirname "$0")/lib.sh"

run sed -n '3,8p' words.txt
run sed 's/\([a-z]*\)e\([a-z]*\)/<\2|\1>/g' words.txt
run sed -e '/^a/d' -e 's/o/0/2' words.txt
run sed '1!G;h;$!d' csv.txt
run sed -E 's/([0-9]+),([0-9]+)/\2+\1/' csv.txt
run awk '{ n[$1]++; t += length($0) } END { for (k in n) c++; printf "%d %d %.4f\n", NR, c, t / NR }' words.txt
run awk -F, '{ s += $3; if ($3 > m) m = $3 } END { print s, m, s / NR; printf "%08.3f|%-6s|%x\n", s / 7, "ab", 255 }' csv.txt
run awk 'BEGIN { for (i = 1; i <= 10; i++) printf "%s ", i * 1.1 / 3 + i % 4; print ""; print int(-3.7), 2^10, 10 % 3, substr("hello", 2, 3), index("hello", "ll"), toupper("abc") }'
run awk 'BEGIN { x = sprintf("%c%c%c", 65, 66, 67); split("a:b:c:d", arr, ":"); print x, length(arr), arr[3]; s = "foo bar foo"; n = gsub(/foo/, "baz", s); print n, s }'
run awk 'NR % 50 == 0 { print NR ": " $0 } /^z/ { z++ } END { print "z-lines", z + 0 }' words.txt
run awk 'BEGIN { printf "%.17g %.17g %d %s\n", 0.1 + 0.2, 1e300 * 10, 2147483648 * 2, 1 / 3 }'
run grep -n ab words.txt
run grep -c -v e words.txt
run grep -i -w -o 'th[a-z]*' long.txt
run grep -E '^(a|b).*[xyz]$' words.txt
run egrep -l 'q|z' words.txt csv.txt nums.txt
run fgrep -x -f pattern.txt words.txt
run grep nomatchatall words.txt
run grep -q ab words.txt
run bc -l bc.txt
run dc -e '2 64 ^ 1 - p 7 3 / p 10 k 2 v p'
run factor 1 2 97 360 65537 600851475143 18446744073709551615
run date -d @0 -u
run date -u -d @1700000000 '+%Y-%m-%d %H:%M:%S %j %a %b %s'
run date -u -d '2024-02-29 12:34:56' +%s
run cal 2 2024
run cal 9 1752
run getopt -o ab:c -l long,arg: -- -a -b x --long --arg=y file1 -c
