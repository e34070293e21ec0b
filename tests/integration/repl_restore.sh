#!/usr/bin/env bash
# repl_restore.sh — a node whose store is restored from an older copy
# gets its own lost changes back from its peer and never reuses a
# sequence: its next write still reaches the peer (SPEC §5, store rule 9).
# san: yes
. "$(dirname "$0")/../lib.sh"

[ -x "$STATEFS_REPL" ] || die "no statefs-repl in $BIN"
ctl() { "$STATEFSCTL" "$@"; }
P1=$(free_port); P2=$(free_port)

declare -A PID
start() { # node
	local n=$1 me other
	if [ "$n" = n1 ]; then me=$P1 other="n2=tcp://127.0.0.1:$P2"
	else me=$P2 other="n1=tcp://127.0.0.1:$P1"; fi
	"$STATEFS_REPL" --insecure --heartbeat 100ms --peer-timeout 1s -n "$n" \
		-l "tcp://127.0.0.1:$me" -p "$other" "$T/$n" 2>>"$T/$n.log" &
	PID[$n]=$!
	track_pid "${PID[$n]}"
}
stop() { kill -TERM "${PID[$1]}"; wait "${PID[$1]}" 2>/dev/null; }
same() { [ "$(ctl -s "$T/n1" digest)" = "$(ctl -s "$T/n2" digest)" ]; }
has() { ctl -s "$T/$1" get "$2" >/dev/null 2>&1; }

ctl -s "$T/n1" put /init 0 >/dev/null && ctl -s "$T/n2" put /init 0 >/dev/null ||
	die "cannot create the stores"
start n1; start n2
for i in $(seq 1 50); do echo "a$i"; done | while read -r k; do
	ctl -s "$T/n1" put "/a/$k" "$k" || exit 1
done || die "writes on n1"
wait_for 20 same || die "n1 and n2 never converged"

# the copy n1 will be restored from
stop n1
cp -a "$T/n1" "$T/n1.bak"
start n1
for i in $(seq 1 30); do ctl -s "$T/n1" put "/b/b$i" "late$i" || fail "put b$i"; done
wait_for 20 has n2 /b/b30 || die "n1's later writes never reached n2"
wait_for 20 same || die "n1 and n2 never converged after the later writes"

# restore n1 from before the later writes: they are lost there
stop n1
rm -rf "$T/n1" && mv "$T/n1.bak" "$T/n1"
has n1 /b/b1 && die "the restored copy already holds the later writes"
start n1
wait_for 20 has n1 /b/b30 || fail "n1 did not get its own lost changes back"
# a new write on n1 must not reuse a sequence n2 has seen
ctl -s "$T/n1" put /after restore || fail "put /after"
wait_for 20 has n2 /after || fail "n1's write after the restore never reached n2 (sequence reused?)"
wait_for 20 same || fail "digests differ after the restore"
expect_eq "$(ctl -s "$T/n1" get /b/b17)" "late17" "a lost change, back on n1"
expect_eq "$(ctl -s "$T/n2" get /after)" "restore" "the new write on n2"
for n in n1 n2; do
	ctl -s "$T/$n" check >/dev/null || fail "statefsctl check on $n"
done
grep -q 'lost changes are back\|lost' "$T/n1.log" || fail "n1 logged nothing about its lost changes"
finish
