#!/usr/bin/env bash
# lock_mesh_loss.sh — mesh-wide locks when the lock service's messages
# between members get lost (SPEC §6; repl/locksvc.h, Fault point). Three
# hosts, every replicator started with STATEFS_FAULT_LOCK_DROP=150: 15%
# of the PROPOSE, RESULT and GRANT messages between members are dropped
# at random (Raft's own traffic is not). A lane proposes a LOCK behind a
# RELEASE still in flight (repl/locksvc.c, Pipelining), so a release can
# be lost while the LOCK behind it arrives: the table must answer GAP,
# and the lane propose both again, in order. Then:
#  - lock cycles on two hosts (own files, and one file of all) all
#    succeed, and some of them did go through a GAP;
#  - 2 hosts x 3 processes x 20 flock-guarded increments end at exactly
#    120 (no two holders at once, every release seen before the next
#    grant);
#  - afterwards no member's table holds a lock: no release was lost;
#  - a value that is no number 0..1000 (15%) is refused with one line.
# The sanitized build too: lost and resent datagrams are where a decoder
# (repl/lockdg.c) or a retry would read freed or foreign memory.
# san: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lock_mesh_lib.sh"
lm_require
export STATEFS_FAULT_LOCK_DROP=150
lm_up 3 --set locks.lease=2s
unset STATEFS_FAULT_LOCK_DROP
H="n1 n2 n3"
for k in $H; do
	grep -q "fault point: dropping 150 of every 1000 lock messages" "$M/$k/repl.log" ||
		die "$k's replicator did not take the fault point"
done
L=$(agreed_leader $H) || die "no leader"
set_followers "$L" $H
echo "leader $L; lockers on $A and $B"

# ---- lock cycles ----
lockers_start 3 loss
lockers_check loss "with 15% loss"

# ---- the counter ----
echo 0 >"$(mnt "$A")/counter" || die "write counter"
mesh wait "$M" 20 || die "counter did not replicate"
locked_increments "$A $B" 3 20 counter
expect_eq $LOCKED_FAILED 0 "incrementing processes that failed"
for k in $H; do
	expect_eq "$(flock "$(mnt "$k")/counter" -c "cat $(mnt "$k")/counter")" 120 \
		"counter read under the lock on $k"
done

# ---- nothing held, and the loss was real ----
wait_for 10 none_held $H || fail "locks held at the end: $(held_counts $H)"
drops=0 gaps=0 resends=0
for k in $H; do
	drops=$((drops + $(lock_stat "$k" lock_fault_drops)))
	gaps=$((gaps + $(lock_stat "$k" lock_gaps)))
	resends=$((resends + $(lock_stat "$k" lock_resends)))
	# lost messages, never malformed ones (repl/lockdg.h)
	expect_eq "$(lock_stat "$k" lock_dg_malformed)" 0 "$k: datagrams refused as malformed"
done
echo "messages dropped $drops, GAP answers $gaps, ops proposed again $resends"
[ "$drops" -gt 100 ] || fail "only $drops messages dropped: the fault point did not bite"
[ "$gaps" -gt 0 ] || fail "no GAP answer: the lost-release path was not exercised"
[ "$resends" -gt 0 ] || fail "no op was proposed again"

# a value that is no permille is refused with one line, not half-used
mesh kill "$M" n3 || die "statefs-mesh kill n3"
STATEFS_FAULT_LOCK_DROP=15% mesh start "$M" n3 || die "statefs-mesh start n3"
refused() { grep -q "STATEFS_FAULT_LOCK_DROP=15% is not a number 0..1000: ignored" "$M/n3/repl.log"; }
wait_for 10 refused || fail "no message for STATEFS_FAULT_LOCK_DROP=15%: $(tail -3 "$M/n3/repl.log")"
wait_for 15 have_leader $H || fail "no agreed leader after n3's restart"
finish
