# Compression and archives: gzip gunzip bzip2 bunzip2 bzcat lzop tar
# cpio (without the fork-based -z filters).
. "$(dirname "$0")/lib.sh"

save big.txt.gz gzip -c -9 big.txt
run wc -c big.txt.gz
run md5sum big.txt.gz
save big.txt.back gunzip -c big.txt.gz
run cmp big.txt big.txt.back
run gzip -1 -k bin.dat
run gzip -t bin.dat.gz
save big.txt.bz2 bzip2 -c big.txt
run wc -c big.txt.bz2
run md5sum big.txt.bz2
save big.txt.back3 bunzip2 -c big.txt.bz2
run cmp big.txt big.txt.back3
save big.txt.back4 bzcat big.txt.bz2
run cmp big.txt big.txt.back4
save bin.dat.lzo lzop -c bin.dat
run md5sum bin.dat.lzo
save bin.dat.unlzo lzop -d -c bin.dat.lzo
run cmp bin.dat bin.dat.unlzo
run gunzip -c host.gz
run tar -cf tree.tar tree
run tar -tvf tree.tar
run tar -xf tree.tar -O tree/a.txt
run md5sum tree.tar
bb find tree | bb cpio -o -H newc > tree.cpio
run cpio -t < tree.cpio
