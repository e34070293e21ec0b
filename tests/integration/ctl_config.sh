#!/usr/bin/env bash
# ctl_config.sh — statefsctl --config FILE opens the store with the
# file's [store] settings, as the mount and the replicator do (config.h:
# one file for all three): max_value bounds a put, binlog_max caps the
# binlog its commits leave.
# san: yes
. "$(dirname "$0")/../lib.sh"
[ -x "$STATEFSCTL" ] || die "no statefsctl in $BIN"
cat >"$T/node.conf" <<EOC
[store]
dir = store
max_value = 1K
binlog_max = 200
EOC
ctl() { "$STATEFSCTL" --config "$T/node.conf" "$@"; }

head -c 1000 /dev/zero >"$T/1000" && head -c 2000 /dev/zero >"$T/2000"
ctl put /small <"$T/1000" || fail "put of 1000 bytes"
put_big() { ctl put /big <"$T/2000"; }
expect_fail_msg "File too large" put_big
ctl get /big >/dev/null 2>&1 && fail "a 2000-byte value was stored past max_value = 1K"

dump() { local i; echo "statefs-dump 1"; for ((i = 1; i <= 500; i++)); do printf 'f 0644 0 0 0 %s/k%03d v\n' "$1" "$i"; done; }
dump /a | ctl import || fail "import /a"
dump /b | ctl import || fail "import /b"
ctl put /last x || fail "put /last"
n=$(ctl status | awk '$1 == "binlog_count" {print $2}')
# the cap is soft by one commit group (store.c, log_trim): after the
# put, the two imports are gone
[ "$n" -le 201 ] || fail "binlog_count $n after two imports of 500 and a put, binlog_max = 200"
finish
