#!/usr/bin/env bash
# lock_scale.sh — elockd's load (SPEC §4): 2,000 holder processes with
# one flock each, plus 100,000 locks held by 50 processes x 2,000 files,
# then every holder killed at once: all 102,000 locks are freed within a
# deadline and counted as orphans.
. "$(dirname "$0")/../lib.sh"
[ -x "$STATEFS" ] || skip "no driver at $STATEFS"
ulimit -n 4096 2>/dev/null || skip "cannot raise the fd limit to 4096"

M=$T/mnt
mount_statefs "$T/store" "$M"
stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$M/.statefs/stats"; }
held() { echo $(($(stat_of locks_held_exclusive) + $(stat_of locks_held_shared))); }
held_is() { [ "$(held)" == "$1" ]; }

# lock_holders (tests/bench/lock_holders.c) --excl DIR HOST NPROC NLOCKS
# GO: NPROC children, child i flocks DIR/ex/HOST/i/j (j < NLOCKS)
# exclusive; "ready NPROC" once all hold them, then they sleep.
LH=$BIN/tests/bench/lock_holders
[ -x "$LH" ] || skip "no $LH"
"$LH" --excl --make "$M" many 2000 1 || die "cannot make the files"
"$LH" --excl --make "$M" big 50 2000 || die "cannot make the files"
touch "$T/go"

start=$SECONDS
# 2,000 processes, one lock each; their own process group to kill at once
setsid "$LH" --excl "$M" many 2000 1 "$T/go" >"$T/many.out" 2>&1 &
many=$!
track_pid $many
wait_for 100 grep -q "^ready 2000" "$T/many.out" ||
	die "2,000 holders not ready: $(tail -3 "$T/many.out")"
echo "2000 holders ready after $((SECONDS - start)) s"
setsid "$LH" --excl "$M" big 50 2000 "$T/go" >"$T/big.out" 2>&1 &
big=$!
track_pid $big
wait_for 100 grep -q "^ready 50" "$T/big.out" ||
	die "50 x 2,000 holders not ready: $(tail -3 "$T/big.out")"
echo "102000 locks held after $((SECONDS - start)) s"
expect_eq "$(held)" 102000 "locks held"
expect_eq "$(stat_of locks_held_exclusive)" 102000 "exclusive locks held"
expect_eq "$(getfattr --only-values -n user.statefs.lock "$M/ex/big/7/1999" 2>/dev/null | cut -d' ' -f1)" \
	exclusive "state of one of the 100,000"
flock -n "$M/ex/many/1999/0" true
expect_eq $? 1 "flock -n on a held lock"

orph0=$(stat_of locks_orphaned)
t0=$SECONDS
# every holder dies at once (each lock_holders and all its children)
kill -9 -- -$many -$big
wait_for 60 held_is 0 || fail "locks still held 60 s after the kill: $(held)"
echo "all released $((SECONDS - t0)) s after kill -9"
expect_eq $(($(stat_of locks_orphaned) - orph0)) 102000 "locks counted as orphans"
expect_eq "$(stat_of lock_waiters)" 0 "waiters"
flock -n "$M/ex/many/1999/0" true
expect_eq $? 0 "flock -n after the holders died"
expect_eq "$(getfattr --only-values -n user.statefs.lock "$M/ex/big/7/1999" 2>/dev/null)" \
	unlocked "state after the kill"
grep -iE "error|fatal" "$T/statefs.log" && fail "driver logged an error"
finish
