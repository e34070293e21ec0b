#!/usr/bin/env bash
# repl_curve.sh — CURVE authentication (SPEC §5: "an unknown peer is
# refused"). n1 and n2 each have a key pair (statefsctl keygen) and
# allow the other's public key; they replicate. n3 has a key n1 does
# not list and dials n1 (it knows n1's public key, so the handshake
# reaches n1's ZAP handler): it never becomes connected, n1's
# repl.status has a `refused_key KEY` line with n3's public key, n1's
# log names that key, nothing of n3's store reaches n1, and n1 still
# replicates with n2. statefsctl status shows the same refused key.
# san: yes
. "$(dirname "$0")/../lib.sh"
REPL=$BIN/repl/statefs-repl
[ -x "$REPL" ] || skip "no $REPL"
ctl() { "$STATEFSCTL" "$@"; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(port) P2=$(port) P3=$(port)
E1=tcp://127.0.0.1:$P1 E2=tcp://127.0.0.1:$P2 E3=tcp://127.0.0.1:$P3
mkdir -p "$T/keys"
for n in n1 n2 n3; do
	ctl keygen "$T/keys/$n" >/dev/null || die "keygen $n"
done
pub() { cat "$T/keys/$1.pub"; }
S1=$T/s1 S2=$T/s2 S3=$T/s3
ctl -s "$S1" put /from/n1 one >/dev/null || die "put on s1"
ctl -s "$S2" put /from/n2 two >/dev/null || die "put on s2"
ctl -s "$S3" put /intruder/x evil >/dev/null || die "put on s3"

"$REPL" --heartbeat 200ms -n n1 -k "$T/keys/n1.key" -l "$E1" \
	-p "n2=$E2=$(pub n2)" "$S1" >"$T/n1.log" 2>&1 &
N1=$!; track_pid $N1
"$REPL" --heartbeat 200ms -n n2 -k "$T/keys/n2.key" -l "$E2" \
	-p "n1=$E1=$(pub n1)" "$S2" >"$T/n2.log" 2>&1 &
N2=$!; track_pid $N2

same() { [ "$(ctl -s "$S1" digest)" = "$(ctl -s "$S2" digest)" ]; }
wait_for 20 same || { tail "$T/n1.log" "$T/n2.log"; die "n1 and n2 did not converge over CURVE"; }
ctl -s "$S1" get /from/n2 >/dev/null || fail "/from/n2 did not reach n1"
wait_for 5 grep -q '^peer n2 connected=1' "$S1/repl.status" || fail "n2 not connected in n1's status"

# ---- the intruder: knows n1's public key, n1 does not know its key ----
"$REPL" --heartbeat 200ms -n n3 -k "$T/keys/n3.key" -l "$E3" \
	-p "n1=$E1=$(pub n1)" "$S3" >"$T/n3.log" 2>&1 &
N3=$!; track_pid $N3
K3=$(pub n3)
refused() { grep -qF "refused_key $K3 " "$S1/repl.status"; }
wait_for 10 refused || fail "n1's repl.status has no refused_key line for n3's key"
wait_for 5 grep -qF -e "$K3" "$T/n1.log" || fail "n1's log does not name n3's key"
sleep 2 # n3 keeps dialling
kill -0 $N3 2>/dev/null || fail "n3 exited"
grep -q '^peer n1 connected=1' "$S3/repl.status" && fail "n3 sees n1 as connected"
grep -q '^peer n1 connected=0' "$S3/repl.status" || fail "n3's status lacks peer n1 connected=0"
grep -q 'peer n1 up' "$T/n3.log" && fail "n3 logged n1 up"
ctl -s "$S1" get /intruder/x >/dev/null 2>&1 && fail "n3's key reached n1"
expect_eq "$(ctl -s "$S1" ls /)" "from" "n1's top level"
[ "$(awk '$1 == "repl_in" {print $2}' "$S3/repl.status")" = 0 ] || fail "n3 received changes"
# statefsctl status shows the refusal too
ctl -s "$S1" status >"$T/status" || fail "status on n1"
grep -qF "refused_key $K3 " "$T/status" || fail "statefsctl status lacks the refused key"
grep -q '^replicator running$' "$T/status" || fail "statefsctl status: replicator not running"
grep -q '^peer n2 connected=1' "$T/status" || fail "statefsctl status: n2 not connected"

# ---- n1 and n2 go on ----
ctl -s "$S2" put /after/n2 x >/dev/null
ctl -s "$S1" put /after/n1 y >/dev/null
wait_for 20 ctl -s "$S1" get /after/n2 >/dev/null || fail "a new key on n2 did not reach n1"
wait_for 20 ctl -s "$S2" get /after/n1 >/dev/null || fail "a new key on n1 did not reach n2"
wait_for 20 same || fail "n1 and n2 differ"
ctl -s "$S2" get /intruder/x >/dev/null 2>&1 && fail "n3's key reached n2"
grep -iE 'AddressSanitizer|runtime error' "$T"/n?.log && fail "a crash report in the logs"
[ $_FAILS -eq 0 ] || { tail -n 15 "$T/n1.log" "$T/n3.log"; cat "$S1/repl.status"; }
finish
