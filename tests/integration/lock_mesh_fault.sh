#!/usr/bin/env bash
# lock_mesh_fault.sh — mesh-wide locks through faults (SPEC §6), three
# hosts in a line, all three voters, lease 2 s:
#  - kill -9 of the leader's replicator: a lock held on another host
#    stays held (flock -n on the third host still fails once a new
#    leader is up), and new requests are served after the election.
#  - n3 cut off from n1 and n2 (statefs-mesh partition, repl.block, which
#    the lock transport honours too): n3's flock -n fails at once (never
#    a false grant), its data writes keep working, the lock it held
#    before the cut goes to a waiter on n1 after the lease (not before
#    lease - 0.5 s: the renewal the leader last saw is at most that old
#    at the cut; not after lease + 2 s), and after the heal n3 takes
#    locks again.
#  - lock cycles on the two other hosts while the leader's replicator is
#    killed: a lane proposes a LOCK behind a RELEASE still in flight
#    (repl/locksvc.c, Pipelining), so commands die on their way in every
#    order; none may be lost or applied out of order: every locker goes
#    on, and once they are done no member's table holds anything.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lock_mesh_lib.sh"
lm_require
LEASE_MS=2000
lm_up 3 --topology line --set locks.lease=2s
H="n1 n2 n3"
for f in f g h k; do echo "$f" >"$(mnt n1)/$f" || die "write $f"; done
mesh wait "$M" 20 || die "files did not replicate"
shown() { local k; for k in $H; do printf '%s=%s; ' "$k" "$(lockx "$(mnt "$k")/$1")"; done; }

# ---- kill -9 of the leader's replicator ----
L=$(agreed_leader $H) || die "no leader"
set_followers "$L" $H
echo "leader $L; holder on $A, third host $B"
(hold ex "$(mnt "$A")/f") &
holder=$!
track_pid $holder
wait_for 10 lock_is "$(mnt "$B")/f" "exclusive $(host_of "$A") $holder" ||
	die "holder on $A not shown on $B: $(shown f)"
killed=$(now_ms)
mesh kill "$M" "$L" || die "statefs-mesh kill $L"
flock -n "$(mnt "$B")/f" true
expect_eq $? 1 "flock -n on $B right after the leader died"
# new requests are served once A and B elected a leader
served() { flock -n "$(mnt "$B")/g" true; }
wait_for 15 served || die "no lock served on $B 15 s after the leader died"
echo "a new lock served on $B $(($(now_ms) - killed)) ms after kill -9 of the leader"
# (repl.status is rewritten every heartbeat: it may lag a little)
new_leader() { local l; l=$(agreed_leader "$A" "$B") && [ "$l" != "$L" ]; }
wait_for 5 new_leader || fail "the survivors name no new leader: $A: '$(leader_of "$A")', $B: '$(leader_of "$B")'"
echo "new leader: $(leader_of "$B")"
flock -n "$(mnt "$B")/f" true
expect_eq $? 1 "flock -n on $B after the election: $A's lock stays held"
expect_eq "$(lockx "$(mnt "$B")/f")" "exclusive $(host_of "$A") $holder" "f's holder after the election"
mesh start "$M" "$L" || die "statefs-mesh start $L"
wait_for 15 have_leader $H || die "no agreed leader after $L came back"
kill -9 $holder
wait $holder 2>/dev/null
wait_for 10 lock_is "$(mnt "$L")/f" unlocked || fail "f after its holder died, seen on $L: $(shown f)"

# ---- n3 cut off ----
(hold ex "$(mnt n3)/h") &
h3=$!
track_pid $h3
wait_for 10 lock_is "$(mnt n1)/h" "exclusive $(host_of n3) $h3" ||
	die "n3's holder not shown on n1: $(shown h)"
cut=$(now_ms)
mesh partition "$M" n1,n2 n3 || die "statefs-mesh partition"
# a waiter on n1 for n3's lock; it gets it once the leader expires n3
(hold ex "$(mnt n1)/h" "$T/got") &
w1=$!
track_pid $w1
timed flock -n "$(mnt n3)/k" true
expect_eq $RC 1 "flock -n on n3 while cut off"
echo "flock -n on cut-off n3: exit $RC in $MS ms"
[ $MS -lt 500 ] || fail "flock -n on cut-off n3 took $MS ms, want < 500"
timed flock -s -n "$(mnt n3)/k" true
expect_eq $RC 1 "flock -s -n on n3 while cut off"
[ $MS -lt 500 ] || fail "flock -s -n on cut-off n3 took $MS ms, want < 500"
# a blocking request waits, and -w gives up (the wait is interruptible):
# never a false grant. In the background: a wait that cannot be
# interrupted would hang the test (the kernel waits for the driver's
# answer), so it is given 5 s and then left to the cleanup.
t0=$(now_ms)
(flock -w 1 "$(mnt n3)/k" true; echo $? >"$T/w.rc"; now_ms >"$T/w.ms") &
track_pid $!
if wait_for 5 test -s "$T/w.ms"; then
	expect_eq "$(cat "$T/w.rc")" 1 "flock -w 1 on n3 while cut off"
	MS=$(($(cat "$T/w.ms") - t0))
	[ $MS -ge 900 ] || fail "flock -w 1 on cut-off n3 returned after $MS ms"
	echo "flock -w 1 on cut-off n3: exit $(cat "$T/w.rc") after $MS ms"
else
	fail "flock -w 1 on cut-off n3 not back 5 s later: its wait cannot be interrupted"
fi
echo "cut-off data" >"$(mnt n3)/during" || fail "write on n3 while cut off"
expect_eq "$(cat "$(mnt n3)/during")" "cut-off data" "read back on n3 while cut off"
# the majority side serves its own requests meanwhile
flock -n "$(mnt n2)/k" true
expect_eq $? 0 "flock -n on n2 during the cut"
wait_for $((LEASE_MS / 1000 + 8)) test -s "$T/got" ||
	die "n1's waiter did not get n3's lock $((LEASE_MS / 1000 + 8)) s after the cut"
freed=$(($(cat "$T/got") - cut))
echo "n3's lock went to n1's waiter $freed ms after the cut (lease $LEASE_MS ms)"
[ $freed -ge $((LEASE_MS - 500)) ] || fail "n3's lock freed $freed ms after the cut, before the lease ($LEASE_MS ms)"
[ $freed -le $((LEASE_MS + 2000)) ] || fail "n3's lock freed $freed ms after the cut, want <= lease + 2 s"
tk=$(token "$(mnt n1)/h")
flock -n "$(mnt n3)/k" true
expect_eq $? 1 "flock -n on n3 still cut off"

mesh heal "$M" || die "statefs-mesh heal"
healed=$(now_ms)
served3() { flock -n "$(mnt n3)/k" true; }
wait_for 15 served3 || fail "n3 serves no lock 15 s after the heal"
echo "n3 took a lock $(($(now_ms) - healed)) ms after the heal"
wait_for 10 lock_is "$(mnt n3)/h" "exclusive $(host_of n1) $w1" ||
	fail "h's holder seen from n3 after the heal: $(shown h)"
flock -n "$(mnt n3)/h" true
expect_eq $? 1 "flock -n on n3 of the lock n1 now holds"
expect_eq "$(token "$(mnt n3)/h")" "$tk" "h's token seen from n3"
kill -9 $w1 $h3
wait $w1 $h3 2>/dev/null
wait_for 10 lock_is "$(mnt n3)/h" unlocked || fail "h at the end: $(shown h)"
mesh wait "$M" 20 || fail "digests differ after the heal"
for k in $H; do
	expect_eq "$(cat "$(mnt "$k")/during")" "cut-off data" "n3's write during the cut, on $k"
done

# ---- lock cycles through a leader kill ----
L=$(agreed_leader $H) || die "no leader before the lock cycles"
set_followers "$L" $H
lockers_start 5 churn
g0=$(lock_stat "$A" lock_table_grants)
going() { [ "$(lock_stat "$A" lock_table_grants)" -ge $((g0 + 300)) ]; }
wait_for 10 going || die "the lockers made no progress: $(cat "$T"/lc.churn.?)"
mesh kill "$M" "$L" || die "statefs-mesh kill $L"
echo "killed the leader $L during lock cycles on $A and $B"
lockers_check churn "through the kill"
mesh start "$M" "$L" || die "statefs-mesh start $L"
wait_for 15 have_leader $H || die "no agreed leader after $L came back"
wait_for 10 none_held $H || fail "locks held after the lockers ended: $(held_counts $H)"
flock -n "$(mnt "$L")/lc.churn" true
expect_eq $? 0 "flock -n on $L of the contended file after the lockers"
finish
