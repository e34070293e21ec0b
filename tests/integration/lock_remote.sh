#!/usr/bin/env bash
# lock_remote.sh — the mount's mesh lock manager (fs/lockremote.c) end to
# end on one host: two mounts of two different stores, both configured
# with [locks] and pointed ([node] control) at one fake lock service
# (tests/unit/fake_locksvc: the real lock table, no Raft), so a lock
# taken through one mount is seen by the other, as across hosts.
# Checks: the start line and stats; a mount that starts before the
# service answers ENOLCK and connects when it comes; flock -n across
# mounts; shared counted 2; kill -9 of a holder frees it; blocking
# waiters in arrival order; flock -w timing out leaves no waiter;
# whole-file fcntl across mounts, byte ranges ENOLCK; O_CREAT|O_EXCL
# waits for the "!" lock and one of two racing creators wins; losing the
# service releases everything (ENOLCK meanwhile) and the mount
# reconnects. Not tested here (the fake answers grants at once, the
# stores are not replicated): the data handover's version vectors, the
# Raft service, leases.
# san: yes
. "$(dirname "$0")/../lib.sh"
command -v flock >/dev/null || skip "flock(1) missing"
command -v getfattr >/dev/null || skip "getfattr missing (package attr)"
command -v python3 >/dev/null || skip "python3 missing"
[ -x "$STATEFS" ] || skip "no driver at $STATEFS"
FAKE=$BIN/tests/unit/fake_locksvc
[ -x "$FAKE" ] || skip "no fake lock service at $FAKE"

SOCK=$T/locks.sock
conf() { # NAME: a config with [locks] whose control is $SOCK
	cat >"$T/$1.conf" <<EOF
[node]
name = $1
insecure = true
control = $SOCK
[locks]
cluster = test
listen = tcp://127.0.0.1:1
voters = a
EOF
	[ "$1" = a ] || printf '[lock a]\naddress = tcp://127.0.0.1:1\n' >>"$T/$1.conf"
}
FAKE_PID=
fake_up() { # [--hold PATH]
	"$FAKE" "$SOCK" "$@" 2>>"$T/fake.log" &
	FAKE_PID=$!
	track_pid $FAKE_PID
	wait_for 5 test -S "$SOCK" || die "fake lock service did not start"
}

A=$T/ma
B=$T/mb
conf a
conf b
# the mounts come first: no lock service yet
mount_statefs "$T/sa" "$A" -o config="$T/a.conf"
mount_statefs "$T/sb" "$B" -o config="$T/b.conf"
grep -q "locks: mesh-wide via $SOCK" "$T/statefs.log" ||
	fail "no 'locks: mesh-wide via SOCK' line: $(grep locks: "$T/statefs.log")"
stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$1/.statefs/stats"; }
expect_eq "$(stat_of "$A" lock_mode)" mesh "lock_mode"
expect_eq "$(stat_of "$A" lock_connected)" 0 "lock_connected with no service"
touch "$A/x" "$B/x" "$A/ex" "$B/ex"
out=$(flock -n "$A/x" true 2>&1)
rc=$?
[ $rc -ne 0 ] && [[ $out == *"No locks available"* ]] ||
	fail "flock with no service: rc $rc, '$out' (want ENOLCK)"
fake_up --hold '!/ex'
wait_output 20 1 stat_of "$A" lock_connected || fail "A did not connect"
wait_output 20 1 stat_of "$B" lock_connected || fail "B did not connect"

# hold ex|sh|posix FILE: a process that holds the lock itself until it
# is killed (flock -F: no child of flock(1) inherits the lock).
cat >"$T/hold.py" <<'EOF'
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX)
while True:
    signal.pause()
EOF
hold() {
	case $1 in
	ex) exec flock -F "$2" sleep 1000 ;;
	sh) exec flock -F -s "$2" sleep 1000 ;;
	posix) exec python3 "$T/hold.py" "$2" ;;
	esac
}
lockx() { getfattr --only-values -n user.statefs.lock "$1" 2>/dev/null; }
lock_is() { [ "$(lockx "$1")" == "$2" ]; }

# ---- exclusive across mounts: -n fails on B while A holds ----
(hold ex "$A/x") &
h1=$!
track_pid $h1
wait_for 20 lock_is "$B/x" "exclusive a $h1" ||
	fail "B sees '$(lockx "$B/x")', want 'exclusive a $h1'"
flock -n "$B/x" true
expect_eq $? 1 "flock -n on B while A holds"
expect_eq "$(stat_of "$A" locks_held_exclusive)" 1 "A's exclusive count"

# ---- flock -w 0.5 on B times out in 0.45..2 s, leaving no waiter ----
t0=$(date +%s%N)
flock -w 0.5 "$B/x" true
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq $rc 1 "flock -w 0.5 on B while A holds"
[ $ms -ge 450 ] && [ $ms -le 2000 ] || fail "flock -w 0.5 took $ms ms"
expect_eq "$(stat_of "$B" lock_waiters)" 0 "B's waiters after the timeout"

# ---- blocking waiters are served in arrival order, across mounts ----
(flock "$B/x" -c "echo B >>$T/order") &
w1=$!
track_pid $w1
wait_output 20 1 stat_of "$B" lock_waiters || fail "B's waiter not queued"
(flock "$A/x" -c "echo A >>$T/order") &
w2=$!
track_pid $w2
wait_output 20 1 stat_of "$A" lock_waiters || fail "A's waiter not queued"
# ---- kill -9 of the holder hands the lock on ----
kill -9 $h1
wait $h1 2>/dev/null
wait $w1 $w2
expect_eq "$(tr '\n' ' ' <"$T/order")" "B A " "grant order"
wait_for 20 lock_is "$B/x" unlocked || fail "x after all: $(lockx "$B/x")"
flock -n "$B/x" true
expect_eq $? 0 "flock -n on B after the holders left"
[ "$(getfattr --only-values -n user.statefs.lock.token "$A/x")" -gt 0 ] ||
	fail "no fencing token on x"

# ---- shared: one holder per mount, counted 2 ----
(hold sh "$A/x") &
s1=$!
track_pid $s1
(hold sh "$B/x") &
s2=$!
track_pid $s2
wait_for 20 lock_is "$A/x" "shared 2" || fail "shared: '$(lockx "$A/x")'"
flock -n -s "$A/x" true
expect_eq $? 0 "a third shared lock"
flock -n "$A/x" true
expect_eq $? 1 "exclusive while shared"
kill -9 $s1 $s2
wait $s1 $s2 2>/dev/null
wait_for 20 lock_is "$A/x" unlocked || fail "after shared: $(lockx "$A/x")"

# ---- fcntl: whole file across mounts; a byte range is ENOLCK ----
(hold posix "$A/x") &
p1=$!
track_pid $p1
wait_for 20 lock_is "$B/x" "exclusive a $p1" || fail "posix: '$(lockx "$B/x")'"
python3 - "$B/x" <<'EOF' || fail "fcntl on B"
import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    sys.exit("whole-file lockf on B succeeded while A holds")
except OSError as e:
    if e.errno not in (errno.EAGAIN, errno.EACCES):
        sys.exit("lockf: %s" % e)
try:
    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 5)
    sys.exit("byte-range lockf succeeded")
except OSError as e:
    if e.errno != errno.ENOLCK:
        sys.exit("byte range: %s, want ENOLCK" % e)
EOF
kill -9 $p1
wait $p1 2>/dev/null

# ---- O_CREAT|O_EXCL waits for the "!" lock (held by the fake) ----
rm -f "$A/ex"
(set -o noclobber; echo one >"$A/ex") 2>/dev/null &
c1=$!
track_pid $c1
wait_output 20 1 stat_of "$A" lock_waiters || fail "the create did not wait"
"$STATEFSCTL" -s "$T/sa" get /ex >/dev/null 2>&1 &&
	fail "/ex exists while the create waits"
kill -USR1 $FAKE_PID
wait $c1
expect_eq $? 0 "the create after the '!' lock was released"
expect_eq "$(cat "$A/ex")" one "the created file"
(set -o noclobber; echo two >"$A/ex") 2>/dev/null
expect_eq $? 1 "noclobber over an existing file"
# two racing creators through one mount: exactly one wins, each time
python3 - "$A" >"$T/races" <<'EOF' || fail "the races"
import os, sys, threading
for i in range(1, 6):
    res = []
    def go():
        try:
            os.close(os.open("%s/r%d" % (sys.argv[1], i),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            res.append("won")
        except FileExistsError:
            res.append("eexist")
    ts = [threading.Thread(target=go) for _ in range(2)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print(" ".join(sorted(res)))
EOF
expect_eq "$(sort -u "$T/races")" "eexist won" "5 races of two creators"
expect_eq "$(wc -l <"$T/races")" 5 "races run"
grep -q "lock !/r1 ex id" "$T/fake.log" || fail "no '!' lock for the creates"

# ---- losing the service releases everything; the mount reconnects ----
(hold ex "$A/x") &
h2=$!
track_pid $h2
wait_for 20 lock_is "$B/x" "exclusive a $h2" || fail "before the loss"
kill -9 $FAKE_PID
wait $FAKE_PID 2>/dev/null
wait_output 20 0 stat_of "$A" lock_connected || fail "A still connected"
expect_eq "$(stat_of "$A" locks_held_exclusive)" 0 "held after the loss"
[ "$(stat_of "$A" locks_orphaned)" -ge 1 ] || fail "no orphan counted"
out=$(flock -n "$B/x" true 2>&1)
[[ $out == *"No locks available"* ]] || fail "flock while lost: '$out'"
grep -q "lost the lock service" "$T/statefs.log" || fail "no loss logged"
out=$( (set -o noclobber; echo x >"$A/new") 2>&1)
[[ $out == *"No locks available"* ]] || fail "O_EXCL create while lost: '$out'"
[ -e "$A/new" ] && fail "the create went ahead without the lock service"
rm -f "$SOCK"
fake_up
wait_output 20 1 stat_of "$A" lock_connected || fail "A did not reconnect"
wait_output 20 1 stat_of "$B" lock_connected || fail "B did not reconnect"
flock -n "$B/x" true
expect_eq $? 0 "B locks x after the reconnection (A's lock was lost)"
kill -9 $h2
wait $h2 2>/dev/null
# ---- -o locks=local overrides the config's [locks] ----
conf c
mount_statefs "$T/sc" "$T/mc" -o config="$T/c.conf",locks=local
expect_eq "$(stat_of "$T/mc" lock_mode)" local "lock_mode with locks=local"
expect_eq "$(stat_of "$T/mc" lock_connected)" 1 "lock_connected of local"

# every grant's handover found the invalidation thread caught up
grep -q "lock handover" "$T/statefs.log" &&
	fail "a handover timed out: $(grep -m1 "lock handover" "$T/statefs.log")"
grep -E -q ': error:|AddressSanitizer|runtime error:' "$T/statefs.log" &&
	fail "the driver logged an error: $(grep -E -m3 ': error:|Sanitizer|runtime error:' "$T/statefs.log")"
echo "lock_remote: $SECONDS s"
[ $_FAILS -eq 0 ] || exit 1
