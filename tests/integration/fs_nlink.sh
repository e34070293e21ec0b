#!/usr/bin/env bash
# fs_nlink.sh — a directory's link count is 2 + its subdirectories, as on
# Linux (find(1) uses it to skip leaf directories): after mkdir, rmdir
# and renames through the mount, through readdirplus (ls -l), and after
# changes made through another mount of the same store.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
mount_statefs "$T/store" "$M"
nl() { stat -c %h "$1"; }

mkdir -p "$M/d/a" "$M/d/b" "$M/d/c/x"
echo v >"$M/d/f"
ln -s a "$M/d/l"
expect_eq "$(nl "$M/d")" "5" "d: 2 + a, b, c"
expect_eq "$(nl "$M/d/c")" "3" "d/c: 2 + x"
expect_eq "$(nl "$M/d/a")" "2" "empty d/a"
expect_eq "$(nl "$M/d/f")" "1" "a file"
expect_eq "$(nl "$M")" "4" "root: 2 + d + .statefs"
# readdirplus entries carry the count too
expect_eq "$(ls -l "$M/d" | awk '$NF == "c" { print $2 }')" "3" "ls -l d: c"
rmdir "$M/d/c/x"
expect_eq "$(nl "$M/d/c")" "2" "d/c after rmdir x"
# (not empty: store/ns.c passes qsort a NULL array for an empty one,
# which UBSan stops the sanitized daemon for; reported to store/)
echo v >"$M/d/a/g"
mv "$M/d/a" "$M/d/c/"
expect_eq "$(nl "$M/d")" "4" "d after mv a into c"
expect_eq "$(nl "$M/d/c")" "3" "d/c after mv a into it"
# find, with its leaf optimisation relying on the count, sees every dir
expect_eq "$(cd "$M/d" && find . -type d | sort | tr '\n' ' ')" ". ./b ./c ./c/a " "find -type d"
expect_eq "$(cd "$M/d" && find . | sort | tr '\n' ' ')" ". ./b ./c ./c/a ./c/a/g ./f ./l " "find"

# changes through another mount reach this one's cached count
M2=$T/mnt2
mount_statefs "$T/store" "$M2"
mkdir "$M2/d/n"
wait_for 5 bash -c "[ \"\$(stat -c %h '$M/d')\" = 5 ]" || fail "d after mkdir on the other mount: $(nl "$M/d")"
rmdir "$M2/d/n"
wait_for 5 bash -c "[ \"\$(stat -c %h '$M/d')\" = 4 ]" || fail "d after rmdir on the other mount: $(nl "$M/d")"
finish
