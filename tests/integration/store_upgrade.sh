#!/usr/bin/env bash
# store_upgrade.sh — a format 1 store (statefs 0.1) is upgraded in place (to
# the current format 3; store_upgrade2.sh does format 2)
# by the first read-write open, keeps every record, value, mode and TTL
# (the digest, which hashes paths, types, modes and values, is the one
# statefs 0.1 printed), passes the consistency check, and is written to
# afterwards; the mount opens an upgraded store.
#
# tests/data/store-format1.mdb was made by statefsctl of statefs 0.1
# (commit 9055c23) and compacted with mdb_copy -c:
#   put /a/one "first value"; put --ttl 3650d /a/two 2;
#   put --mode 600 /b/c/deep deep; put /gone x; del /gone;
#   printf 'bin\0ary' | put /bin; put /old/sub/x 1; del -r /old
# san: yes
. "$(dirname "$0")/../lib.sh"

DATA=$(cd "$(dirname "$0")/../data" && pwd)
STORE=$T/store
mkdir -p "$STORE"
cp "$DATA/store-format1.mdb" "$STORE/store.mdb"

ctl() { "$STATEFSCTL" -s "$STORE" "$@"; }

# a read-only mount cannot upgrade: refused with one line, file untouched
if [ -e /dev/fuse ]; then
	sum=$(sha256sum <"$STORE/store.mdb")
	mkdir -p "$T/ro"
	out=$(timeout 10 "$STATEFS" -f -o ro "$STORE" "$T/ro" 2>&1)
	expect_eq $? 1 "exit status of a read-only mount of a format 1 store"
	expect_eq "$out" "statefs: $STORE/store.mdb: store format 1 (statefs 0.1): open it read-write once to upgrade it" \
		"message of a read-only mount of a format 1 store"
	expect_eq "$(sha256sum <"$STORE/store.mdb")" "$sum" "the format 1 file after the refused mount"
fi

out=$(ctl check 2>&1)
expect_eq "$out" "ok" "check after the upgrade"
expect_eq "$(ctl status | grep '^format ')" "format 3" "format after the upgrade"
expect_eq "$(ctl digest)" \
	"bd165ebe4263babf67a90b33258c714642cbd3f6ef5bf531a5543a8804c523d6" \
	"digest as statefs 0.1 printed it"
expect_eq "$(ctl get /a/one)" "first value" "value of /a/one"
expect_eq "$(ctl get /bin | od -An -c | tr -s ' ')" " b i n \\0 a r y" "binary value"
expect_eq "$(ctl ls -R / | tr '\n' ' ')" "/a /b /bin /a/one /a/two /b/c /b/c/deep " "keys"
expect_eq "$(ctl stat /b/c/deep | grep '^mode ')" "mode 0600" "mode kept"
expect_eq "$(ctl stat /a/two | grep '^ttl ')" "ttl 315360000000ms" "TTL kept"
expect_eq "$(ctl stat /a/two | grep '^expires ')" "expires 2036-11-28T07:01:24.823Z" \
	"deadline kept"
expect_eq "$(ctl get /gone 2>/dev/null; echo $?)" "1" "a deleted key stays deleted"
expect_eq "$(ctl status | grep '^records ')" "records 7" "records counted"
expect_eq "$(ctl status | grep '^tombstones ')" "tombstones 4" "tombstones counted"
expect_eq "$(ctl get /old/sub/x 2>/dev/null; echo $?)" "1" "a deleted tree stays deleted"

ctl put /a/one "second" || fail "put after the upgrade"
expect_eq "$(ctl get /a/one)" "second" "write after the upgrade"
expect_eq "$(ctl check)" "ok" "check after a write"

mount_statefs "$STORE" "$T/mnt"
expect_eq "$(cat "$T/mnt/b/c/deep")" "deep" "the mount reads an upgraded store"
finish
