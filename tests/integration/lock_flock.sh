#!/usr/bin/env bash
# lock_flock.sh — flock(1)/flock(2) through a real mount (SPEC §4):
# exclusive counting under 20 concurrent writers, -n, -w timeout without
# a leak, kill -9 of a holder, Ctrl-C of a waiter, shared counts and the
# lock xattrs, the fencing token, and the O_CREAT|O_EXCL race.
# san: yes
. "$(dirname "$0")/../lib.sh"
command -v flock >/dev/null || skip "flock(1) missing"
command -v getfattr >/dev/null || skip "getfattr missing (package attr)"
command -v python3 >/dev/null || skip "python3 missing"
[ -x "$STATEFS" ] || skip "no driver at $STATEFS"

M=$T/mnt
mount_statefs "$T/store" "$M"
cd "$M" || die "cd $M"

# hold MODE FILE: one process that takes the flock (ex or sh) itself and
# keeps it until killed. (flock FILE sleep N would leave the lock with
# sleep, which inherits the open file, when flock(1) is killed.)
cat >"$T/hold.py" <<'EOF'
import fcntl, os, signal, sys
fd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX if sys.argv[1] == "ex" else fcntl.LOCK_SH)
while True:
    signal.pause()
EOF
hold() { exec python3 "$T/hold.py" "$@"; }
HOST=$(cat /proc/sys/kernel/hostname)

lockx() { getfattr --only-values -n user.statefs.lock "$1" 2>/dev/null; }
token() { getfattr --only-values -n user.statefs.lock.token "$1" 2>/dev/null; }
stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$M/.statefs/stats"; }
lock_is() { [ "$(lockx "$1")" == "$2" ]; }
waiters_are() { [ "$(stat_of lock_waiters)" == "$1" ]; }

# ---- 20 processes x 50 locked increments end at exactly 1000 ----
# (wait names its jobs: a bare wait would wait for the driver too)
echo 0 >counter
jobs_=()
for i in $(seq 20); do
	(for j in $(seq 50); do
		flock counter -c 'n=$(cat counter); echo $((n + 1)) > counter'
	done) &
	track_pid $!
	jobs_+=($!)
done
wait "${jobs_[@]}"
echo "counter: $SECONDS s"
expect_eq "$(cat counter)" 1000 "counter after 20x50 locked increments"
expect_eq "$(lockx counter)" unlocked "lock state after the counter"

# ---- flock -n: exit 1 while held, 0 after ----
(hold ex lk) &
holder=$!
track_pid $holder
wait_for 30 lock_is lk "exclusive $HOST $holder" ||
	fail "holder shown: got '$(lockx lk)', want 'exclusive HOST $holder'"
flock -n lk true
expect_eq $? 1 "flock -n while held"
# ---- flock -w 0.5 times out with exit 1 in 0.5..2 s ----
t0=$(date +%s%N)
flock -w 0.5 lk true
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq $rc 1 "flock -w 0.5 while held"
[ $ms -ge 450 ] && [ $ms -le 2000 ] || fail "flock -w 0.5 took $ms ms"
expect_eq "$(stat_of lock_waiters)" 0 "waiters after the timeout"
kill -9 $holder
wait $holder 2>/dev/null
# the timed-out waiter left nothing behind: the lock is free now
wait_for 30 lock_is lk unlocked || fail "lk after holder death: $(lockx lk)"
flock -n lk true
expect_eq $? 0 "flock -n after the holder died"

# ---- kill -9 of a holder hands the lock to a waiter ----
(hold ex lk) &
holder=$!
track_pid $holder
wait_for 30 lock_is lk "exclusive $HOST $holder" ||
	fail "second holder not shown: $(lockx lk)"
flock lk -c 'echo got > got' &
waiter=$!
track_pid $waiter
wait_for 30 waiters_are 1 || fail "waiter not queued"
[ -e got ] && fail "waiter ran while the holder held the lock"
orph0=$(stat_of locks_orphaned)
kill -9 $holder
wait_for 30 test -s got || fail "waiter did not get the lock after kill -9"
wait $waiter
expect_eq $? 0 "waiter exit"
expect_eq "$(cat got)" got "waiter output"
[ "$(stat_of locks_orphaned)" -gt "$orph0" ] ||
	fail "orphans did not grow after kill -9 ($orph0)"
wait_for 30 lock_is lk unlocked || fail "lk not unlocked: $(lockx lk)"

# ---- Ctrl-C (SIGINT) of a blocked flock leaves no lock behind ----
# Background jobs ignore SIGINT; python restores the default first.
(hold ex lk) &
holder=$!
track_pid $holder
wait_for 30 lock_is lk "exclusive $HOST $holder" ||
	fail "third holder not shown"
python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp("flock", ["flock", sys.argv[1], "-c", "echo leaked > leaked"])' lk &
waiter=$!
track_pid $waiter
wait_for 30 waiters_are 1 || fail "ctrl-c waiter not queued"
kill -INT $waiter
wait $waiter
rc=$?
expect_eq $rc 130 "exit status of the interrupted flock (128+SIGINT)"
expect_eq "$(stat_of lock_waiters)" 0 "waiters after Ctrl-C"
kill -9 $holder
wait $holder 2>/dev/null
wait_for 30 lock_is lk unlocked || fail "lock left after Ctrl-C: $(lockx lk)"
[ -e leaked ] && fail "the interrupted waiter ran its command"
flock -n lk true
expect_eq $? 0 "flock -n after Ctrl-C of the waiter"

# ---- shared holders are counted; exclusive shows host and pid ----
pids=()
for i in 1 2 3; do
	(hold sh sh) &
	pids+=($!)
	track_pid $!
done
wait_for 30 lock_is sh "shared 3" || fail "shared count: got '$(lockx sh)'"
flock -n sh true
expect_eq $? 1 "exclusive flock -n while shared"
flock -s -n sh true
expect_eq $? 0 "shared flock -n while shared"
kill -9 "${pids[@]}"
wait "${pids[@]}" 2>/dev/null
wait_for 30 lock_is sh unlocked || fail "sh after shared holders died: $(lockx sh)"
(hold ex sh) &
holder=$!
track_pid $holder
wait_for 30 lock_is sh "exclusive $HOST $holder" ||
	fail "exclusive holder: got '$(lockx sh)', want pid $holder"
kill -9 $holder
wait $holder 2>/dev/null
wait_for 30 lock_is sh unlocked || fail "sh not unlocked: $(lockx sh)"

# ---- the fencing token grows with every exclusive grant ----
t1=$(flock tk -c 'getfattr --only-values -n user.statefs.lock.token tk')
t2=$(flock tk -c 'getfattr --only-values -n user.statefs.lock.token tk')
t3=$(flock tk -c 'getfattr --only-values -n user.statefs.lock.token tk')
[[ $t1 =~ ^[0-9]+$ ]] || fail "token not a number: '$t1'"
[ "$t2" -gt "$t1" ] 2>/dev/null && [ "$t3" -gt "$t2" ] 2>/dev/null ||
	fail "token did not grow: $t1 $t2 $t3"
expect_eq "$(token never-locked-$$)" "" "token of a missing file"
touch never
expect_eq "$(token never)" 0 "token of a never locked file"

# ---- O_CREAT|O_EXCL race: exactly one of 50 creators wins ----
jobs_=()
for i in $(seq 50); do
	(set -o noclobber; echo $BASHPID >excl) >"$T/excl.$i" 2>&1 &
	jobs_+=($!)
done
wait "${jobs_[@]}"
wins=0 losers=0
for i in $(seq 50); do
	if [ -s "$T/excl.$i" ]; then
		grep -q "cannot overwrite existing file" "$T/excl.$i" &&
			losers=$((losers + 1))
	else
		wins=$((wins + 1))
	fi
done
expect_eq $wins 1 "noclobber creators that won"
expect_eq $losers 49 "creators told 'cannot overwrite existing file'"
[[ $(cat excl) =~ ^[0-9]+$ ]] || fail "excl holds '$(cat excl)'"

expect_eq "$(stat_of locks_held_exclusive)" 0 "locks held at the end"
expect_eq "$(stat_of locks_held_shared)" 0 "shared locks held at the end"
cd /
grep -iE "error|fatal" "$T/statefs.log" && fail "driver logged an error"
finish
