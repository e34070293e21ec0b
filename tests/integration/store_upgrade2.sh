#!/usr/bin/env bash
# store_upgrade2.sh — a format 2 store (per-field versions in a 144-byte
# record header) is upgraded in place to format 3 by the first
# read-write open: every record keeps its value, mode, TTL, deadline,
# xattrs and field versions (the digest is the one format 2 printed),
# every binlog entry is kept under its sequence and reads back the same,
# and the store passes the consistency check and is written to
# afterwards.
#
# tests/data/store-format2.mdb was made by statefsctl and statefs of
# commit 087f436 (format 2) and compacted with mdb_copy -c:
#   put /a/one "first value"; put --ttl 3650d /a/two 2;
#   put --mode 600 /b/c/deep deep; put /gone x; del /gone;
#   printf 'bin\0ary' | put /bin; put /old/sub/x 1; del -r /old;
#   then through a mount: setfattr user.color=red and user.gone=x on
#   /a/one, setfattr -x user.gone, chmod 640 /a/one, mkdir /e
# san: yes
. "$(dirname "$0")/../lib.sh"

DATA=$(cd "$(dirname "$0")/../data" && pwd)
STORE=$T/store
mkdir -p "$STORE"
cp "$DATA/store-format2.mdb" "$STORE/store.mdb"

ctl() { "$STATEFSCTL" -s "$STORE" "$@"; }

# a read-only mount cannot upgrade: refused with one line, file untouched
if [ -e /dev/fuse ]; then
	sum=$(sha256sum <"$STORE/store.mdb")
	mkdir -p "$T/ro"
	out=$(timeout 10 "$STATEFS" -f -o ro "$STORE" "$T/ro" 2>&1)
	expect_eq $? 1 "exit status of a read-only mount of a format 2 store"
	expect_eq "$out" "statefs: $STORE/store.mdb: store format 2: open it read-write once to upgrade it" \
		"message of a read-only mount of a format 2 store"
	expect_eq "$(sha256sum <"$STORE/store.mdb")" "$sum" "the format 2 file after the refused mount"
fi

# what statefsctl of format 2 printed for this store
want_watch='1 mkdir /a 0 52f665f59091dd8f
2 put /a/one 11 52f665f59091dd8f
3 put /a/two 1 52f665f59091dd8f
4 mkdir /b 0 52f665f59091dd8f
5 mkdir /b/c 0 52f665f59091dd8f
6 put /b/c/deep 4 52f665f59091dd8f
7 put /gone 1 52f665f59091dd8f
8 del /gone 0 52f665f59091dd8f
9 put /bin 7 52f665f59091dd8f
10 mkdir /old 0 52f665f59091dd8f
11 mkdir /old/sub 0 52f665f59091dd8f
12 put /old/sub/x 1 52f665f59091dd8f
13 del /old/sub/x 0 52f665f59091dd8f
14 del /old/sub 0 52f665f59091dd8f
15 del /old 0 52f665f59091dd8f
16 put /a/one 11 52f665f59091dd8f
17 put /a/one 11 52f665f59091dd8f
18 put /a/one 11 52f665f59091dd8f
19 put /a/one 11 52f665f59091dd8f
20 mkdir /e 0 52f665f59091dd8f'

out=$(ctl check 2>&1)
expect_eq "$out" "ok" "check after the upgrade"
expect_eq "$(ctl status | grep '^format ')" "format 3" "format after the upgrade"
expect_eq "$(ctl digest)" \
	"bd50ba6d19a51b8b19c8236ea29f53e38b81dfd909967a459f78a55d3a416a6b" \
	"digest as format 2 printed it"
expect_eq "$(ctl get /a/one)" "first value" "value of /a/one"
expect_eq "$(ctl get /bin | od -An -c | tr -s ' ')" " b i n \\0 a r y" "binary value"
expect_eq "$(ctl ls -R / | tr '\n' ' ')" "/a /b /bin /e /a/one /a/two /b/c /b/c/deep " "keys"
expect_eq "$(ctl stat /a/one | grep -E '^(mode|version|origin_seq) ' | tr '\n' ' ')" \
	"mode 0640 version 1796128685009.0 52f665f59091dd8f origin_seq 117711089500749824 " \
	"mode and versions of /a/one"
expect_eq "$(ctl stat /b/c/deep | grep '^mode ')" "mode 0600" "mode kept"
expect_eq "$(ctl stat /a/two | grep -E '^(ttl|expires|version) ' | tr '\n' ' ')" \
	"ttl 315360000000ms expires 2036-11-28T12:38:04.626Z version 1796128684626.0 52f665f59091dd8f " \
	"TTL, deadline and version kept"
expect_eq "$(ctl stat /e | grep -E '^(type|version) ' | tr '\n' ' ')" \
	"type dir version 1796128685028.0 52f665f59091dd8f " "the directory /e"
expect_eq "$(ctl get /gone 2>/dev/null; echo $?)" "1" "a deleted key stays deleted"
expect_eq "$(ctl get /old/sub/x 2>/dev/null; echo $?)" "1" "a deleted tree stays deleted"
expect_eq "$(ctl status | grep -E '^(records|tombstones|binlog_first|binlog_last|binlog_count|local_seq) ' | tr '\n' ' ')" \
	"records 8 tombstones 4 binlog_first 1 binlog_last 20 binlog_count 20 local_seq 117711089501995008 " \
	"counts, binlog and sequence kept"

# the binlog reads back entry by entry as format 2 printed it
# (statefsctl itself in the background, not the ctl function: $! must
# be the process to stop)
"$STATEFSCTL" -s "$STORE" watch --from 0 >"$T/watch" 2>&1 &
watch_pid=$!
track_pid $watch_pid
wait_for 10 eval '[ "$(wc -l <"$T/watch")" -ge 20 ]' || fail "watch printed $(wc -l <"$T/watch") lines"
expect_eq "$(head -20 "$T/watch")" "$want_watch" "the binlog after the upgrade"
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null

ctl put /a/one "second" || fail "put after the upgrade"
expect_eq "$(ctl get /a/one)" "second" "write after the upgrade"
expect_eq "$(ctl status | grep '^binlog_last ')" "binlog_last 21" "the write is logged after the kept entries"
expect_eq "$(ctl check)" "ok" "check after a write"

mount_statefs "$STORE" "$T/mnt"
expect_eq "$(cat "$T/mnt/b/c/deep")" "deep" "the mount reads an upgraded store"
expect_eq "$(getfattr --only-values -n user.color "$T/mnt/a/one" 2>/dev/null)" "red" "xattr kept"
expect_eq "$(getfattr -d "$T/mnt/a/one" 2>/dev/null | grep -c '^user\.')" "1" "a removed xattr stays removed"
finish
