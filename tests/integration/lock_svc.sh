#!/usr/bin/env bash
# lock_svc.sh — the mesh lock service of three statefs-repl (n1 n2 n3,
# all voters, CURVE keys, free loopback ports), driven through the local
# socket of common/lockproto.h by tests/lp_client, without mounts. Their
# data goes through a fourth replicator, n4, with no [locks]: stopping
# it (SIGSTOP) holds data back without touching the lock cluster.
#   - a leader is elected and every member's status names it;
#   - an exclusive lock on n1: n2's non-blocking request EWOULDBLOCK;
#     waiters on n3 then n2 are granted in arrival order as holders go
#     (a client that exits closes its session), tokens grow;
#   - CANCEL of a queued wait answers EINTR and leaves no waiter;
#   - the data handover: a lock released on n1 after a write there is
#     granted on n2 only once n2's store has that write;
#   - three shared holders on three hosts, counted by QUERY;
#   - kill -9 of the leader's replicator: a new leader, the locks of the
#     others stay held, new requests are served; the dead host's shared
#     lock goes with its lease;
#   - a member cut off (STORE_DIR/repl.block both ways): it answers
#     non-blocking requests EWOULDBLOCK at once, its lock is freed after
#     the lease and taken on the majority side; a wait there is
#     cancelled at once; healed, it serves again.
# san: yes
. "$(dirname "$0")/../lib.sh"
LPC=$BIN/tests/lp_client
[ -x "$LPC" ] || skip "no tests/lp_client in $BIN"
"$STATEFS_REPL" --help | grep -q 'refuses \[locks\]' &&
	skip "statefs-repl built without libraft: no lock service"
D=$T/c
NODES="n1 n2 n3"
# on failure, the replicators' logs before lib.sh's cleanup
dump_logs() {
	local k
	for k in $NODES; do
		echo "--- $k repl.log (last 25 lines)" >&2
		tail -n 25 "$D/$k/repl.log" >&2 2>/dev/null
		grep '^lock_' "$D/$k/store/repl.status" 2>/dev/null | head -8 | tr '\n' ' ' >&2
		echo >&2
	done
}
trap '_rc=$?; [ $_rc -eq 0 ] || dump_logs; (exit $_rc); _cleanup' EXIT

PORTS=()
for _ in $(seq 10); do
	PORTS+=($(free_port))
done
[ ${#PORTS[@]} -eq 10 ] || die "no free ports"
i=0
for k in $NODES n4 n5; do
	mkdir -p "$D/$k"
	"$STATEFSCTL" keygen "$D/$k/node" >/dev/null || die "keygen $k"
	echo "${PORTS[$i]}" >"$D/$k/lport"
	echo "${PORTS[$((i + 1))]}" >"$D/$k/rport"
	i=$((i + 2))
done
peer() { # name
	echo "[peer $1]"
	echo "address = tcp://127.0.0.1:$(cat "$D/$1/rport")"
	echo "public_key = $(cat "$D/$1/node.pub")"
}
conf() { # nK [LOCK MEMBERS...]: n4 relays the data of n1..n3
	local k=$1 p; shift
	echo "[store]"
	echo "dir = store"
	echo "[node]"
	echo "name = $k"
	echo "listen = tcp://127.0.0.1:$(cat "$D/$k/rport")"
	echo "key = node.key"
	echo "[replication]"
	echo "heartbeat = 200ms"
	echo "peer_timeout = 1s"
	if [ "$k" = n4 ]; then
		for p in $NODES; do peer "$p"; done
	else
		peer n4
	fi
	echo "[locks]"
	echo "cluster = test"
	echo "listen = tcp://127.0.0.1:$(cat "$D/$k/lport")"
	echo "voters = n1 n2 n3"
	echo "lease = 2s"
	echo "election_timeout = 300ms"
	for p in $NODES n4; do
		[ "$p" = "$k" ] && continue
		echo "[lock $p]"
		echo "address = tcp://127.0.0.1:$(cat "$D/$p/lport")"
		echo "public_key = $(cat "$D/$p/node.pub")"
	done
}
for k in $NODES n4; do
	conf "$k" >"$D/$k/node.conf"
	"$STATEFS_REPL" --check-config "$D/$k/node.conf" || die "config of $k"
done
# n5: a lock cluster of its own whose raft dir cannot be made
printf '[store]\ndir = store\n[node]\nname = n5\nlisten =\nkey = node.key\n' >"$D/n5/node.conf"
printf '[locks]\ncluster = solo\nlisten = tcp://127.0.0.1:%s\nvoters = n5\ndir = not-a-dir/raft\n' \
	"$(cat "$D/n5/lport")" >>"$D/n5/node.conf"
touch "$D/n5/not-a-dir"

start() { # nK
	"$STATEFS_REPL" --config "$D/$1/node.conf" -v >>"$D/$1/repl.log" 2>&1 &
	echo $! >"$D/$1/pid"
	track_pid "$(cat "$D/$1/pid")"
}
field() { awk -v n="$2" '$1 == n {sub(/^[^ ]+ /, ""); print}' "$D/$1/store/repl.status" 2>/dev/null; }
sock() { echo "$D/$1/store/repl.sock"; }
# lpc nK STEP...: a client of nK's service, in the foreground
lpc() { local k=$1; shift; "$LPC" "$(sock "$k")" --host "$k" --timeout 10000 "$@"; }
# bg NAME nK STEP...: a client in the background, its output in $T/NAME
bg() {
	local n=$1 k=$2; shift 2
	"$LPC" "$(sock "$k")" --host "$k" --timeout 10000 "$@" >"$T/$n" 2>&1 &
	echo $! >"$T/$n.pid"
	track_pid $!
}
stop_bg() { kill "$(cat "$T/$1.pid")" 2>/dev/null; wait "$(cat "$T/$1.pid")" 2>/dev/null; }
has_line() { grep -qx -- "$2" "$T/$1"; }
# all_agree NODES...: every one names the same leader and is reachable
all_agree() {
	local k l= x
	for k in "$@"; do
		x=$(field "$k" lock_leader)
		[ -n "$x" ] && [ "$x" != - ] && [ "$(field "$k" lock_reachable)" = 1 ] || return 1
		[ -z "$l" ] || [ "$l" = "$x" ] || return 1
		l=$x
	done
}
leader() { field "$1" lock_leader; }
# new_leader OLD NODES...: they agree on a leader other than OLD
new_leader() { local old=$1; shift; all_agree "$@" && [ "$(leader "$1")" != "$old" ]; }
unreachable() { [ "$(field "$1" lock_reachable)" = 0 ]; }
query_is() { [ "$(lpc "$1" query:"$2" | tail -1 | cut -d' ' -f1-3)" = "$3" ]; }

for k in n4 $NODES n5; do start "$k"; done
wait_for 20 all_agree $NODES || die "no leader agreed on: $(for k in $NODES; do echo "$k: $(field "$k" lock_role) $(field "$k" lock_leader) $(field "$k" lock_reachable)"; done)"
L=$(leader n1)
expect_eq "$(field "$L" lock_role)" leader "role of the leader $L"
"$STATEFSCTL" -s "$D/n1/store" status | grep -q "^locks: cluster test voters n1 n2 n3 leader $L role " ||
	fail "statefsctl status has no locks: line: $("$STATEFSCTL" -s "$D/n1/store" status | grep '^lock')"
wait_for 10 all_agree n4 $NODES || fail "the standby n4 does not follow: $(field n4 lock_role) $(field n4 lock_leader)"
expect_eq "$(field n4 lock_role)" standby "role of n4"

# ---- a member whose raft dir cannot be made: every lock fails ENOLCK ----
echo "[$SECONDS s] a failed lock service"
wait_for 10 test -S "$(sock n5)" || die "n5 has no control socket"
wait_output 10 failed field n5 lock_role || fail "n5's role: $(field n5 lock_role)"
expect_eq "$(lpc n5 lock:ex:/f | tail -1)" ENOLCK "a lock on the failed n5"
expect_eq "$(lpc n5 query:/f | tail -1)" ENOLCK "a query on the failed n5"
grep -q 'error: locks: the lock service cannot start: raft dir .*not-a-dir/raft' "$D/n5/repl.log" ||
	fail "n5 did not say why: $(grep locks "$D/n5/repl.log")"
kill -0 "$(cat "$D/n5/pid")" || fail "n5 exited: the replicator must keep running"

# ---- exclusive, a non-blocking loser, waiters in order ----
echo "[$SECONDS s] exclusive, a non-blocking loser, waiters in order"
bg h1 n1 wait:ex:/a hold
wait_for 10 grep -q '^granted ' "$T/h1" || die "n1's exclusive lock: $(cat "$T/h1")"
t1=$(awk '/^granted/ {print $2}' "$T/h1")
expect_eq "$(lpc n2 lock:ex:/a | tail -1)" EWOULDBLOCK "n2's non-blocking request on a held lock"
bg w3 n3 wait:ex:/a hold
wait_for 10 has_line w3 queued || die "n3's waiter: $(cat "$T/w3")"
bg w2 n2 wait:ex:/a hold
wait_for 10 has_line w2 queued || die "n2's waiter: $(cat "$T/w2")"
wait_for 10 query_is n2 /a "state ex holders=1" || fail "query on n2: $(lpc n2 query:/a)"
lpc n2 query:/a | grep -q ' host=n1 .*waiters=2 ' || fail "query on n2 names n1 and 2 waiters: $(lpc n2 query:/a)"
stop_bg h1   # n1's client goes: its session closes, n3 is next
wait_for 10 grep -q '^granted ' "$T/w3" || die "n3's waiter not granted after n1's client left: $(cat "$T/w3")"
t3=$(awk '/^granted/ {print $2}' "$T/w3")
wait_output 5 1 field n1 lock_orphans_closed || fail "n1's orphans_closed: $(field n1 lock_orphans_closed)"
grep -q '^granted' "$T/w2" && fail "n2 granted while n3 holds: $(cat "$T/w2")"
stop_bg w3
wait_for 10 grep -q '^granted ' "$T/w2" || die "n2's waiter not granted after n3's: $(cat "$T/w2")"
t2=$(awk '/^granted/ {print $2}' "$T/w2")
[ "$t1" -lt "$t3" ] && [ "$t3" -lt "$t2" ] || fail "tokens do not grow in grant order: $t1 $t3 $t2"
stop_bg w2
wait_for 10 query_is n1 /a "state unlocked" ||
	[ "$(lpc n1 query:/a | cut -d' ' -f1-2)" = "state unlocked" ] || fail "/a still held: $(lpc n1 query:/a)"

# ---- the standby proposes through the leader ----
echo "[$SECONDS s] the standby"
out=$(lpc n4 wait:ex:/n4 query:/n4 | tail -2 | cut -d' ' -f1-4 | tr '\n' ' ')
[[ $out == "granted "*"state ex holders=1 host=n4 " ]] || fail "a lock through the standby n4: $out"

# ---- malformed messages from a mount: refused, the service goes on ----
echo "[$SECONDS s] malformed messages"
cat >"$T/bad.py" <<'PY'
import socket, struct, sys
HDR = "=IIQiIIIQiIIIQII"   # struct lp_msg, 72 bytes
def msg(version=1, type_=1, path=b"h", reserved=0, pathlen=None):
    n = len(path) if pathlen is None else pathlen
    return struct.pack(HDR, version, type_, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                       n, reserved) + path
cases = [("short", b"\x01\x00\x00"), ("HELLO of version 9", msg(version=9)),
         ("unknown type", msg(type_=99)), ("reserved set", msg(reserved=1)),
         ("path length past the packet", msg(pathlen=9)),
         ("NUL in the path", msg(path=b"a\0b")),
         ("LOCK before HELLO", msg(type_=2, path=b"/x"))]
for name, pkt in cases:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(sys.argv[1])
    s.send(pkt)
    got = s.recv(4096)
    if name.startswith("HELLO of version"):
        if len(got) < 72 or struct.unpack(HDR, got[:72])[3] != -71:
            print("%s: no -EPROTO answer: %r" % (name, got)); sys.exit(1)
        got = s.recv(4096)
    if got != b"":
        print("%s: the connection stayed open (%r)" % (name, got)); sys.exit(1)
    s.close()
print("ok")
PY
expect_eq "$(/usr/bin/python3 "$T/bad.py" "$(sock n2)" 2>&1)" ok "malformed messages close their connection"
grep -q 'locks: a malformed message from a mount: closing its connection' "$D/n2/repl.log" ||
	fail "n2 did not log the malformed message"
lpc n2 wait:ex:/after-bad | tail -1 | grep -q '^granted ' || fail "n2 serves no lock after malformed messages"

# ---- cancel ----
echo "[$SECONDS s] cancel"
bg h1 n1 wait:ex:/a hold
wait_for 10 grep -q '^granted ' "$T/h1" || die "n1's lock on /a again: $(cat "$T/h1")"
out=$(lpc n3 cancel:300:ex:/a | tail -2 | tr '\n' ' ')
expect_eq "$out" "queued EINTR " "a cancelled wait on n3"
wait_for 10 query_is n3 /a "state ex holders=1" || fail "after the cancel: $(lpc n3 query:/a)"
lpc n3 query:/a | grep -q ' waiters=0 ' || fail "the cancelled waiter stayed: $(lpc n3 query:/a)"
stop_bg h1

# ---- the data handover ----
echo "[$SECONDS s] the data handover"
bg hh n1 wait:ex:/h waitfile:"$T/go" unlock:/h hold
wait_for 10 grep -q '^granted ' "$T/hh" || die "n1's lock on /h: $(cat "$T/hh")"
bg wh n2 wait:ex:/h hold
wait_for 10 has_line wh queued || die "n2's wait on /h: $(cat "$T/wh")"
kill -STOP "$(cat "$D/n4/pid")"
"$STATEFSCTL" -s "$D/n1/store" put /k v1 || fail "put on n1"
touch "$T/go"
wait_for 10 has_line hh ok || fail "n1's unlock of /h: $(cat "$T/hh")"
wait_for 10 query_is n2 /h "state ex holders=1" && lpc n2 query:/h | grep -q ' host=n2 ' ||
	fail "n2 does not hold /h in the table: $(lpc n2 query:/h)"
sleep 1   # n2's store lacks n1's write: the grant must wait
grep -q '^granted' "$T/wh" && fail "n2 granted before its store had n1's write: $(cat "$T/wh")"
kill -CONT "$(cat "$D/n4/pid")"
wait_for 10 grep -q '^granted' "$T/wh" || fail "n2 not granted after n1's write arrived: $(cat "$T/wh")"
expect_eq "$("$STATEFSCTL" -s "$D/n2/store" get /k)" v1 "n1's write on n2 when n2's grant came"
stop_bg hh
stop_bg wh

# ---- shared: three hosts, counted ----
echo "[$SECONDS s] shared: three hosts, counted"
for k in $NODES; do bg s$k "$k" wait:sh:/s hold; done
for k in $NODES; do wait_for 10 grep -q '^granted' "$T/s$k" || die "shared on $k: $(cat "$T/s$k")"; done
wait_for 10 query_is n3 /s "state sh holders=3" || fail "three shared holders: $(lpc n3 query:/s)"

# ---- kill -9 the leader's replicator ----
echo "[$SECONDS s] kill -9 the leader's replicator"
L=$(leader n1)
S=$(echo $NODES | tr ' ' '\n' | grep -vx "$L" | tr '\n' ' ')
kill -9 "$(cat "$D/$L/pid")"
wait "$(cat "$D/$L/pid")" 2>/dev/null
t0=$SECONDS
# shellcheck disable=SC2086
wait_for 15 new_leader "$L" $S || die "no new leader after $L died: $(for k in $S; do echo "$k: $(field "$k" lock_role) $(field "$k" lock_leader)"; done)"
echo "leader $L killed: $(leader "${S%% *}") leads after $((SECONDS - t0)) s"
A=${S%% *}
expect_eq "$(lpc "$A" lock:ex:/s | tail -1)" EWOULDBLOCK "exclusive on /s held shared through the leader's death"
lpc "$A" wait:ex:/b | tail -1 | grep -q '^granted ' || fail "a new lock after the leader's death"
# the dead host's shared lock goes with its lease (2 s)
wait_for 15 query_is "$A" /s "state sh holders=2" || fail "the dead host's shared lock was not expired: $(lpc "$A" query:/s)"
echo "leader $L killed: its session expired after $((SECONDS - t0)) s"
for k in $NODES; do stop_bg s$k; done
start "$L"
wait_for 20 all_agree $NODES || die "$L did not rejoin"

# ---- a member cut off ----
echo "[$SECONDS s] a member cut off"
C=$(echo $NODES | tr ' ' '\n' | grep -vx "$(leader n1)" | head -1)
M=$(echo $NODES | tr ' ' '\n' | grep -vx "$C" | tr '\n' ' ')
bg hc "$C" wait:ex:/c hold
wait_for 10 grep -q '^granted' "$T/hc" || die "$C's lock on /c: $(cat "$T/hc")"
echo "$M" >"$D/$C/store/repl.block"
for k in $M; do echo "$C" >"$D/$k/store/repl.block"; done
wait_for 10 unreachable "$C" || die "$C does not see itself cut off"
t0=$(date +%s%N)
expect_eq "$(lpc "$C" lock:ex:/z | tail -1)" EWOULDBLOCK "non-blocking request on the cut-off $C"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 1000 ] || fail "the cut-off $C took $ms ms to answer"
A=${M%% *}
# shellcheck disable=SC2086
wait_for 10 all_agree $M || fail "the majority side has no leader"
wait_for 15 bash -c "[ \"\$('$LPC' '$(sock "$A")' --timeout 5000 wait:ex:/c | tail -1 | cut -d' ' -f1)\" = granted ]" ||
	fail "$C's lock on /c was not freed after the lease on $A: $(lpc "$A" query:/c)"
t0=$(date +%s%N)
out=$(lpc "$C" cancel:300:ex:/c | tail -1)
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq "$out" EINTR "a cancelled wait on the cut-off $C"
[ "$ms" -lt 1500 ] || fail "the cut-off $C took $ms ms to cancel a wait"
for k in $NODES; do rm -f "$D/$k/store/repl.block"; done
wait_for 15 all_agree $NODES || fail "$C did not come back after healing"
lpc "$C" wait:ex:/d | tail -1 | grep -q '^granted ' || fail "$C serves no lock after healing"
stop_bg hc

for k in $NODES n4; do
	grep -E ': (error|fatal):|Sanitizer|runtime error' "$D/$k/repl.log" &&
		fail "$k logged an error"
done
finish
