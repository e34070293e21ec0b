#!/usr/bin/env bash
# lock_mesh_counter.sh — locks and data together (SPEC §6: a process
# granted a lock sees every write earlier holders made before releasing
# it, on whatever host they ran). Three hosts in a line n1-n2-n3:
#  - the handover chain: n1 writes a 2 MiB value under the lock, then n2
#    takes the lock and appends, then n3 takes it and reads. n1's value
#    reaches n3 only through n2 (two hops of data, while the lock's Raft
#    links are direct), and each step starts right after the previous
#    released: n3's read under the lock must be n1's value plus n2's line.
#  - the counter: 3 hosts x 5 processes x 50 `flock counter -c
#    'n=$(cat counter); echo $((n+1)) > counter'` end at exactly 750,
#    read under the lock on every host, and on every host once settled.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lock_mesh_lib.sh"
lm_require
lm_up 3 --topology line --set locks.lease=2s
H="n1 n2 n3"

# ---- the handover chain ----
head -c 2097152 /dev/urandom >"$T/big" || die "make the value"
rounds=4
for r in $(seq $rounds); do
	f=chain$r
	flock "$(mnt n1)/$f.lock" -c "cp $T/big $(mnt n1)/$f" || fail "n1 write, round $r"
	flock "$(mnt n2)/$f.lock" -c "echo n2-was-here >>$(mnt n2)/$f" ||
		fail "n2 append, round $r"
	flock "$(mnt n3)/$f.lock" -c "sha256sum <$(mnt n3)/$f" >"$T/$f.n3" ||
		fail "n3 read, round $r"
	want=$({ cat "$T/big"; echo n2-was-here; } | sha256sum)
	expect_eq "$(cat "$T/$f.n3")" "$want" "round $r: n3's read under the lock (n1's value + n2's line)"
done

# ---- the counter ----
echo 0 >"$(mnt n1)/counter" || die "write counter"
mesh wait "$M" 20 || die "counter did not replicate"
t0=$(now_ms)
locked_increments "$H" 5 50 counter
ms=$(($(now_ms) - t0))
echo "counter: 750 locked increments on 3 hosts in $ms ms ($((ms * 1000 / 750)) us each)"
expect_eq $LOCKED_FAILED 0 "incrementing processes that failed"
for k in $H; do
	got=$(flock "$(mnt "$k")/counter" -c "cat $(mnt "$k")/counter")
	expect_eq "$got" 750 "counter read under the lock on $k"
done
mesh wait "$M" 20 || fail "digests differ after the counter"
for k in $H; do
	expect_eq "$(cat "$(mnt "$k")/counter")" 750 "counter on $k once settled"
	expect_eq "$(lockx "$(mnt "$k")/counter")" unlocked "counter's lock on $k"
done
mesh_logs_clean "$M"
finish
