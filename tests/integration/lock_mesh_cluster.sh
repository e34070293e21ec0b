#!/usr/bin/env bash
# lock_mesh_cluster.sh — a lock service whose config differs from the
# cluster's gets nothing (SPEC §6 with §5's authentication; repl/raftnet.h):
#  - an outsider with a key no member knows, claiming to be n3 of the
#    same cluster, dialling n1's and n2's lock ports: refused (n1 logs
#    its key), no leader ever, and the members' locks go on as before;
#  - n3's own key (n3 stopped) with another cluster name, so another
#    cluster id: its frames are dropped and counted by n1 and n2, logged
#    "cluster id differs", and it never learns a leader; the members
#    serve locks meanwhile, and the real n3 rejoins afterwards.
# san: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lock_mesh_lib.sh"
lm_require
lm_up 3 --topology line --set locks.lease=2s
H="n1 n2 n3"
echo x >"$(mnt n1)/f" || die "write f"
mesh wait "$M" 20 || die "f did not replicate"
cluster=$(sed -n 's/^CLUSTER=//p' "$M/mesh.env")
[ -n "$cluster" ] || die "no CLUSTER in mesh.env"
L0=$(agreed_leader $H) || die "no leader"

# outsider DIR CLUSTER: a statefs-repl "n3" of the lock cluster CLUSTER
# with the key in DIR/node.key, dialling n1's and n2's lock ports.
outsider() {
	local d=$1 cl=$2 k
	mkdir -p "$d"
	{
		echo "[store]"
		echo "dir = store"
		echo "[node]"
		echo "name = n3"
		echo "key = node.key"
		echo "[replication]"
		echo "heartbeat = 200ms"
		echo "[locks]"
		echo "cluster = $cl"
		echo "listen = tcp://127.0.0.1:$(free_port)"
		echo "voters = n1 n2 n3"
		echo "lease = 2s"
		for k in n1 n2; do
			echo "[lock $k]"
			echo "address = tcp://127.0.0.1:$(cat "$M/$k/lockport")"
			echo "public_key = $(cat "$M/$k/node.pub")"
		done
	} >"$d/node.conf"
	"$STATEFS_REPL" --config "$d/node.conf" >>"$d/repl.log" 2>&1 &
	OUT_PID=$!
	track_pid $OUT_PID
	wait_for 10 grep -qx "pid $OUT_PID" "$d/store/repl.status" ||
		die "the outsider in $d wrote no status: $(tail -3 "$d/repl.log")"
}
out_has_leader() { [ -n "$(leader_in "$1/store")" ]; }
# the members still serve locks, the leader unchanged by the outsider
members_fine() { # nodes...
	local k
	for k in "$@"; do
		flock -n "$(mnt "$k")/f" true || { fail "flock -n on $k with an outsider around"; return; }
	done
	expect_eq "$(agreed_leader "$@")" "$L0" "the members' leader with an outsider around"
}

# ---- an unknown key ----
mkdir -p "$T/o1" && "$STATEFSCTL" keygen "$T/o1/node" >/dev/null || die "keygen"
outsider "$T/o1" "$cluster"
wait_for 3 out_has_leader "$T/o1" &&
	fail "an outsider with an unknown key learned a leader: $(leader_in "$T/o1/store")"
members_fine $H
key=$(cat "$T/o1/node.pub")
refused() { grep -F -q "public key $key is not a lock member's" "$M/n1/repl.log"; }
wait_for 5 refused || fail "n1 did not log the outsider's key $key as refused"
kill -TERM $OUT_PID
wait $OUT_PID 2>/dev/null

# ---- a member's key, another cluster ----
mesh stop "$M" n3 || die "statefs-mesh stop n3"
drops_before=$(($(lock_stat n1 lock_drop_cluster) + 0))
mkdir -p "$T/o2"
cp "$M/n3/node.key" "$T/o2/node.key" && chmod 600 "$T/o2/node.key" || die "copy n3's key"
outsider "$T/o2" "other-$cluster"
wait_for 3 out_has_leader "$T/o2" &&
	fail "an outsider of another cluster learned a leader: $(leader_in "$T/o2/store")"
members_fine n1 n2
dropped() { [ "$(lock_stat n1 lock_drop_cluster)" -gt "$drops_before" ] 2>/dev/null; }
wait_for 5 dropped || fail "n1's lock_drop_cluster: '$(lock_stat n1 lock_drop_cluster)', was $drops_before"
echo "n1: lock_drop_cluster $(lock_stat n1 lock_drop_cluster), n2: $(lock_stat n2 lock_drop_cluster)"
logged() { grep -E -q 'lock peer n3 .*cluster id [0-9a-f]+ differs' "$M/n1/repl.log" "$M/n2/repl.log"; }
wait_for 5 logged || fail "neither n1 nor n2 logged that n3's cluster id differs"
kill -TERM $OUT_PID
wait $OUT_PID 2>/dev/null
mesh start "$M" n3 || die "statefs-mesh start n3"
wait_for 15 have_leader $H || fail "n3 did not rejoin the lock cluster"
# statefs-mesh start waited for n3's mount to reconnect: once n3 is in
# touch with the majority, its mount's requests are served
reachable3() { [ "$(lock_stat n3 lock_reachable)" = 1 ]; }
wait_for 10 reachable3 || fail "n3 not reachable 10 s after it rejoined"
flock -n "$(mnt n3)/f" true
expect_eq $? 0 "flock -n on n3 after it rejoined"
finish
