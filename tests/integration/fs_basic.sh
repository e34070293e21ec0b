#!/usr/bin/env bash
# fs_basic.sh — everyday file operations through a statefs mount:
# echo/cat/append, truncate, dd, cp, mv, sed -i, directories, renames,
# refused node types, symlinks, name length limits.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
mount_statefs "$T/store" "$M"

echo hello >"$M/a"
expect_eq "$(cat "$M/a")" "hello" "echo > / cat"
echo world >>"$M/a"
expect_eq "$(cat "$M/a")" "$(printf 'hello\nworld')" "append >>"
expect_eq "$(stat -c %s "$M/a")" "12" "size after append"
truncate -s 3 "$M/a"
expect_eq "$(cat "$M/a")" "hel" "truncate -s 3"
truncate -s 5 "$M/a"
expect_eq "$(od -An -c "$M/a" | tr -s ' ')" " h e l \\0 \\0" "truncate extends with zeros"
: >"$M/a"
wait_for 5 test "$(stat -c %s "$M/a")" = 0 || fail ": > a did not empty the file"
dd if=/dev/zero of="$M/z" bs=4096 count=64 status=none
expect_eq "$(stat -c %s "$M/z")" "262144" "dd size"
expect_eq "$(cmp /dev/zero "$M/z" -n 262144 && echo same)" "same" "dd content"
head -c 300000 /dev/urandom >"$T/rand"
cp "$T/rand" "$M/rand"
cmp -s "$T/rand" "$M/rand" || fail "cp of 300000 random bytes differs"
dd if="$T/rand" of="$M/rand" bs=1 skip=10 seek=10 count=5 conv=notrunc status=none
cmp -s "$T/rand" "$M/rand" || fail "dd conv=notrunc of the same bytes changed the file"
mv "$M/rand" "$M/rand2"
[ ! -e "$M/rand" ] || fail "mv left the source"
cmp -s "$T/rand" "$M/rand2" || fail "mv changed the content"
printf 'one\ntwo\n' >"$M/s"
sed -i 's/two/three/' "$M/s"
expect_eq "$(cat "$M/s")" "$(printf 'one\nthree')" "sed -i"

# directories
mkdir -p "$M/d1/d2/d3"
echo x >"$M/d1/d2/d3/f"
expect_eq "$(cat "$M/d1/d2/d3/f")" "x" "file in mkdir -p tree"
expect_fail_msg "Directory not empty" rmdir "$M/d1"
expect_fail_msg "Is a directory" rm "$M/d1"
expect_fail_msg "Not a directory" rmdir "$M/s"
mv "$M/d1" "$M/e1"
expect_eq "$(cat "$M/e1/d2/d3/f")" "x" "rename of a whole directory"
[ ! -e "$M/d1" ] || fail "old directory still there"
echo new >"$M/n1"
echo old >"$M/n2"
mv "$M/n1" "$M/n2"
expect_eq "$(cat "$M/n2")" "new" "rename over a file"
[ ! -e "$M/n1" ] || fail "rename source still there"
rm -r "$M/e1"
[ ! -e "$M/e1" ] || fail "rm -r"
expect_eq "$(ls "$M")" "$(printf 'a\nn2\nrand2\ns\nz')" "listing"

# refused node types, nothing created
expect_fail_msg "Operation not permitted" mkfifo "$M/fifo"
[ ! -e "$M/fifo" ] || fail "fifo created"
expect_fail_msg "Operation not permitted" mknod "$M/cdev" c 1 3
[ ! -e "$M/cdev" ] || fail "char device created"
expect_fail_msg "Operation not permitted" ln "$M/a" "$M/hard"
[ ! -e "$M/hard" ] || fail "hard link created"

# symlinks
ln -s n2 "$M/sym"
expect_eq "$(readlink "$M/sym")" "n2" "readlink"
expect_eq "$(cat "$M/sym")" "new" "read through symlink"

# names
n255=$(printf 'x%.0s' $(seq 255))
echo ok >"$M/$n255"
expect_eq "$(cat "$M/$n255")" "ok" "255-byte name"
expect_fail_msg "File name too long" touch "$M/${n255}y"

# O_EXCL: exactly one of 20 racing creators wins
pids=()
for i in $(seq 20); do
	(set -o noclobber; echo $i >"$M/excl") 2>/dev/null &
	pids+=($!)
done
wins=0
for p in "${pids[@]}"; do wait "$p" && wins=$((wins + 1)); done
expect_eq "$wins" "1" "O_EXCL creators that succeeded"
expect_eq "$(cat "$M/excl" | wc -l)" "1" "one O_EXCL creator's value"

# large-ish value read back in pieces is one snapshot
head -c 1000000 /dev/urandom >"$T/big"
cp "$T/big" "$M/big"
cmp -s "$T/big" "$M/big" || fail "1 MB value"
finish
