#!/usr/bin/env bash
# fs_attrs.sh — chmod/chown/touch -d, user xattrs, refused namespaces,
# df shows the map size.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
mount_statefs "$T/store" "$M" -o size=64M
echo v >"$M/f"
chmod 640 "$M/f"
expect_eq "$(stat -c %a "$M/f")" "640" "chmod"
chown 1234:5678 "$M/f"
expect_eq "$(stat -c %u:%g "$M/f")" "1234:5678" "chown"
touch -d "2001-02-03 04:05:06 UTC" "$M/f"
expect_eq "$(stat -c %Y "$M/f")" "981173106" "touch -d"
# atime is kept apart from mtime (utimensat with two times)
touch -a -d "2010-01-01 00:00:00 UTC" "$M/f"
touch -m -d "2001-02-03 04:05:06 UTC" "$M/f"
expect_eq "$(stat -c '%X %Y' "$M/f")" "1262304000 981173106" "atime and mtime apart"
python3 -c 'import os,sys; os.utime(sys.argv[1], ns=(1500000000123456789, 1400000000987654321))' "$M/f"
expect_eq "$(stat -c '%.9X %.9Y' "$M/f")" "1500000000.123456789 1400000000.987654321" \
	"utimensat with two different times"
mkdir "$M/adir"
touch -a -d "2012-01-01 00:00:00 UTC" "$M/adir"
expect_eq "$(stat -c %X "$M/adir")" "1325376000" "atime of a directory"
mkdir -m 700 "$M/d"
expect_eq "$(stat -c %a "$M/d")" "700" "mkdir -m"
setfattr -n user.color -v blue "$M/f"
expect_eq "$(getfattr --absolute-names --only-values -n user.color "$M/f")" "blue" "user xattr"
expect_eq "$(getfattr --absolute-names -d "$M/f" | grep -c user.color)" "1" "listxattr"
setfattr -x user.color "$M/f"
expect_fail_msg "No such attribute" getfattr -n user.color "$M/f"
expect_fail_msg "Operation not supported" setfattr -n trusted.x -v 1 "$M/f"
expect_fail_msg "Operation not permitted" setfattr -n user.statefs.expires -v 1 "$M/f"
expect_eq "$(getfattr --absolute-names --only-values -n user.statefs.expires "$M/f")" "never" "no deadline"
expect_eq "$(getfattr --absolute-names --only-values -n user.statefs.lock "$M/f")" "unlocked" "lock state"
# df: 64 MiB map = 16384 blocks of 4 KiB
expect_eq "$(stat -f -c '%S %b' "$M")" "4096 16384" "statfs blocks"
expect_eq "$(stat -f -c %l "$M")" "255" "namemax"
finish
