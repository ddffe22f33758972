# Text utilities: echo printf cat head tail wc sort uniq cut tr tac rev nl
# paste fold expand unexpand seq basename dirname expr true false test [
# dos2unix unix2dos.
. "$(dirname "$0")/lib.sh"

run echo hello world
run echo -n no-newline; echo
run echo -e 'tab\there\\n'
run printf '%s|%5d|%-4s|%x|%o|%c|%%\n' str 42 ab 255 8 xyz
run printf '%.3f %e %g\n' 3.14159 12345.678 0.0001
run printf '%b\n' 'a\tb\101'
run cat words.txt
run cat -n csv.txt
run head -n 5 words.txt
run head -c 100 bin.dat
run tail -n 7 words.txt
run tail -c 50 words.txt
run tail -n +290 words.txt
run wc words.txt
run wc -l -w -c csv.txt
run sort words.txt
run sort -r -u words.txt
run sort -n nums.txt
run sort -t, -k3,3n -k1,1 csv.txt
run sort -g nums.txt
bb sort words.txt > sorted.txt
run uniq -c sorted.txt
run uniq -d sorted.txt
run cut -d, -f2,4 csv.txt
run cut -c1-5,8- words.txt
run tr a-z A-Z < words.txt
run tr -d aeiou < words.txt
run tr -s 'a-z' < words.txt
run tac csv.txt
run rev words.txt
run nl -ba -w3 csv.txt
run paste -d: words.txt nums.txt
run paste -s -d, nums.txt
run fold -w 17 long.txt
run fold -s -w 30 long.txt
run expand -t 4 tabs.txt
run unexpand -a tabs-spaces.txt
run seq 10
run seq -s, 0 7 100
run seq -w 8 12
run seq 1.5 0.25 3
run basename /usr/lib/libfoo.so .so
run dirname /usr/lib/libfoo.so
run expr 7 \* 6
run expr length abcdef
run expr 100 / 7 % 5
run expr abc : 'a\(.*\)'
run expr 5 '>' 3
run expr 0 + 0
run true
run false
run test 3 -lt 5
run test -f words.txt
run test -d words.txt
run test abc = abd
run [ -s csv.txt ]
run [ 5 -ge 7 -o x != y ]
run unix2dos crlf.txt
run cat -A crlf.txt
run dos2unix crlf.txt
run cat -A crlf.txt
