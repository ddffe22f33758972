# Files and directories: ls stat find tee dd truncate touch mkdir rmdir rm
# cp mv ln readlink chmod du wc.
. "$(dirname "$0")/lib.sh"

run ls tree
run ls -ln --full-time tree
run ls -R -1 tree
run ls -s -S tree
run stat -c '%n %s %a %F %h' tree/a.txt tree/sub tree/link
run stat -L -c '%n %s %F' tree/link
run find tree
run find tree -type f -name '*.txt'
run find tree -size +1k -o -type l
run find tree -newer tree/old.txt -type f
run find tree -maxdepth 1 -type d
run tee copy1.txt copy2.txt < csv.txt
run cmp copy1.txt copy2.txt
run dd if=bin.dat of=dd.out bs=1000 count=7 skip=3
run wc -c dd.out
echo '## dd conv=swab | md5sum'
bb dd if=bin.dat bs=512 count=2 conv=swab status=none | bb md5sum
run dd if=words.txt bs=13 skip=2 count=3 status=none
run truncate -s 12345 trunc.dat
run stat -c %s trunc.dat
run truncate -s 100 trunc.dat
run stat -c %s trunc.dat
run touch -d '2001-02-03 04:05:06' touched
run stat -c '%s %Y' touched
run mkdir -p made/a/b/c
run mkdir made
run rmdir made/a/b/c
run cp -r tree tree-copy
run ls -R tree-copy
run mv tree-copy/a.txt tree-copy/moved.txt
run ln -s moved.txt tree-copy/sym
run readlink tree-copy/sym
run cat tree-copy/sym
run chmod 600 tree-copy/moved.txt
run stat -c %a tree-copy/moved.txt
run rm -r tree-copy
run ls
run du -s -k tree
run rm nonexistent-file
