#!/usr/bin/env bash
# fs_helpers.sh — the command line: --help, --version, an unknown option
# (message, exit 2), a live mount refused, a dead mount (driver killed -9)
# cleaned before mounting again with every committed value intact.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
"$STATEFS" --help | grep -q '^usage: statefs' || fail "--help"
"$STATEFS" --version | grep -q '^statefs ' || fail "--version"
out=$("$STATEFS" -o foo "$T/store" "$M" 2>&1); rc=$?
expect_eq "$rc" "2" "exit code of an unknown option"
expect_eq "$out" "statefs: unknown option 'foo'" "unknown option message"
"$STATEFS" >/dev/null 2>&1; expect_eq "$?" "2" "exit code without arguments"

mount_statefs "$T/store" "$M" -o size=16M,nosuid,nodev,noatime,_netdev,rw
for i in $(seq 1 50); do echo "v$i" >"$M/f$i"; done
out=$("$STATEFS" -f "$T/store" "$M" 2>&1); rc=$?
expect_eq "$rc" "1" "exit code on a live mount"
expect_eq "$out" "statefs: $M is already mounted" "live mount message"
# kill -9 in the middle of writes: committed values survive
( i=0; while :; do i=$((i + 1)); echo "x$i" >"$M/busy" 2>/dev/null || exit 0; done ) &
wp=$!
track_pid $wp
sleep 0.3
kill -9 "$STATEFS_PID"
wait "$wp" 2>/dev/null
wait_for 5 bash -c "! stat '$M' >/dev/null 2>&1" || fail "mount not dead after kill -9"
mount_statefs "$T/store" "$M"
# the dead mount is still listed until the driver detaches it
wait_for 10 stat "$M/f1" >/dev/null || fail "no live mount after the restart: $(cat "$T/statefs.log")"
for i in $(seq 1 50); do
	[ "$(cat "$M/f$i")" = "v$i" ] || { fail "f$i lost after kill -9: '$(cat "$M/f$i")'"; break; }
done
[[ $(cat "$M/busy") =~ ^x[0-9]+$ ]] || fail "busy value after kill -9: '$(cat "$M/busy")'"
finish
