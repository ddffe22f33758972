# Checksums and binary dumps: md5sum sha1sum sha256sum sha512sum sha3sum
# crc32 base64 od hexdump xxd strings cmp diff uuencode uudecode.
. "$(dirname "$0")/lib.sh"

run md5sum words.txt bin.dat big.txt
run sha1sum words.txt bin.dat
run sha256sum words.txt bin.dat big.txt
run sha512sum bin.dat
run sha3sum bin.dat
run crc32 bin.dat
bb md5sum words.txt csv.txt > sums.md5
run md5sum -c sums.md5
run base64 bin.dat
bb base64 bin.dat > bin.b64
save bin.back base64 -d bin.b64
run cmp bin.dat bin.back
run od -A x -t x1 -N 96 bin.dat
run od -t d4 -N 64 bin.dat
run od -c -N 48 words.txt
run hexdump -C -n 128 bin.dat
run hexdump -e '4/4 "%08x " "\n"' -n 64 bin.dat
run xxd -l 96 bin.dat
run xxd -p -l 64 bin.dat
run strings -n 6 bin.dat
run cmp words.txt words2.txt
run cmp -l bin.dat bin2.dat
run diff words.txt words2.txt
run diff -u csv.txt csv2.txt
save bin.uu uuencode bin.dat data.bin
run head -n 3 bin.uu
run uudecode -o bin.uud bin.uu
run cmp bin.dat bin.uud
