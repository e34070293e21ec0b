#!/usr/bin/env bash
# repl_garbage.sh — garbage on the replication port (SPEC §9): two
# replicators mirror each other; then frames thrown at n1's port by
# tests/integration/zmq_send.c (a DEALER: ZeroMQ speaks ZMTP, so raw
# TCP would not reach the decoder at all): random bytes, every
# malformed sample of tests/fuzz/corpus_wire (truncated, wrong magic
# or version or type, oversized counts, a CHANGES ending inside a
# commit group...), a message in two frames, a heartbeat of a session
# nobody opened, and a HELLO and a CHANGES built with wire.h's encoders
# sent twice. Afterwards n1's store is unchanged (digest), checks clean,
# n1 still runs and replicates both ways, its log says what it dropped
# and repl.status counted repl_dropped_malformed, _replayed, _session.
# san: yes
. "$(dirname "$0")/../lib.sh"
REPL=$BIN/repl/statefs-repl
SEND=$BIN/tests/zmq_send
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$REPL" ] || skip "no $REPL"
[ -x "$SEND" ] || skip "no $SEND"
ctl() { "$STATEFSCTL" "$@"; }

# Two free ports on the loopback.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(port) P2=$(port)
E1=tcp://127.0.0.1:$P1 E2=tcp://127.0.0.1:$P2
S1=$T/s1 S2=$T/s2
ctl -s "$S1" put /seed/a one >/dev/null || die "put on s1"
ctl -s "$S2" put /seed/b two >/dev/null || die "put on s2"
# n1 also lists a peer "tester" that dials it: zmq_send opens a session
# under that name (insecure: a name is all a HELLO needs).
"$REPL" --insecure --heartbeat 200ms -n n1 -l "$E1" -p "n2=$E2" -p "tester=" "$S1" \
	>"$T/n1.log" 2>&1 &
N1=$!; track_pid $N1
"$REPL" --insecure --heartbeat 200ms -n n2 -l "$E2" -p "n1=$E1" "$S2" >"$T/n2.log" 2>&1 &
N2=$!; track_pid $N2

same() { [ "$(ctl -s "$S1" digest)" = "$(ctl -s "$S2" digest)" ]; }
wait_for 20 same || { tail "$T/n1.log" "$T/n2.log"; die "n1 and n2 did not converge"; }
ctl -s "$S1" get /seed/b >/dev/null || die "/seed/b did not reach n1"
counter() { awk -v k="$1" '$1 == k {print $2}' "$S1/repl.status"; }
wait_for 5 grep -q '^peer n2 connected=1' "$S1/repl.status" || die "n2 not connected in n1's status"
m0=$(counter repl_dropped_malformed) r0=$(counter repl_dropped_replayed)
s0=$(counter repl_dropped_session)
d0=$(ctl -s "$S1" digest)

# ---- garbage ----
args=(hex:00 hex:deadbeef "hex:$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n')")
for f in "$ROOT"/tests/fuzz/corpus_wire/bad_*; do
	args+=("sample:$(basename "$f")")
done
args+=(sample:heartbeat two) # a valid message split in two frames
"$SEND" --id garbage --dir "$ROOT/tests/fuzz/corpus_wire" "$E1" "${args[@]}" ||
	fail "zmq_send of the garbage"
# a heartbeat of a session no HELLO opened
"$SEND" --id stranger --node 77 "$E1" heartbeat || fail "zmq_send heartbeat"
# HELLO as tester, then a CHANGES of n1's own last change (which it
# holds: applying it changes nothing), each sent twice
"$SEND" --id tester --store "$S1" "$E1" hello:tester sleep:100 changes sleep:100 \
	again sleep:100 heartbeat again || fail "zmq_send replays"

# ---- n1 took it all ----
nbad=$(ls "$ROOT"/tests/fuzz/corpus_wire/bad_* | wc -l)
# every piece of garbage is dropped as malformed, or, for a CHANGES or
# snapshot chunk from a sender no HELLO opened a session for, as an
# unknown session before its body is read (the stranger's heartbeat
# too); repl.status is rewritten every heartbeat
dropped() {
	[ $(($(counter repl_dropped_malformed) + $(counter repl_dropped_session))) -ge \
	  $((m0 + s0 + nbad + 4)) ] &&
		[ "$(counter repl_dropped_replayed)" -ge $((r0 + 2)) ]
}
wait_for 10 dropped || fail "garbage dropped: malformed $m0 -> $(counter repl_dropped_malformed), session $s0 -> $(counter repl_dropped_session), want +$((nbad + 4)) together"
kill -0 $N1 2>/dev/null || die "n1 died: $(tail -5 "$T/n1.log")"
expect_eq "$(ctl -s "$S1" digest)" "$d0" "n1's digest after the garbage"
ctl -s "$S1" check >/dev/null || fail "statefsctl check on n1 after the garbage"
m1=$(counter repl_dropped_malformed) r1=$(counter repl_dropped_replayed)
s1=$(counter repl_dropped_session)
[ "$m1" -ge $((m0 + 3)) ] ||
	fail "repl_dropped_malformed $m0 -> $m1, want +3 at least (random bytes, two frames)"
[ "$r1" -ge $((r0 + 2)) ] || fail "repl_dropped_replayed $r0 -> $r1, want +2 (CHANGES and HEARTBEAT again)"
[ "$s1" -gt "$s0" ] || fail "repl_dropped_session $s0 -> $s1, want more (a stranger's heartbeat)"
grep -q 'dropped a malformed message' "$T/n1.log" || fail "n1's log does not say it dropped malformed messages"
grep -q 'dropped a replayed message' "$T/n1.log" || fail "n1's log does not say it dropped a replay"

# ---- and still replicates, both ways ----
ctl -s "$S2" put /after/from-n2 x >/dev/null
ctl -s "$S1" put /after/from-n1 y >/dev/null
wait_for 20 ctl -s "$S1" get /after/from-n2 >/dev/null || fail "a new key on n2 did not reach n1"
wait_for 20 ctl -s "$S2" get /after/from-n1 >/dev/null || fail "a new key on n1 did not reach n2"
wait_for 20 same || fail "n1 and n2 differ after the garbage"
kill -0 $N2 2>/dev/null || fail "n2 died"
grep -iE 'fatal|AddressSanitizer|runtime error' "$T/n1.log" "$T/n2.log" && fail "a crash report in the logs"
[ $_FAILS -eq 0 ] || { tail -n 20 "$T/n1.log"; cat "$S1/repl.status"; }
finish
