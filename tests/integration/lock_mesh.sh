#!/usr/bin/env bash
# lock_mesh.sh — mesh-wide flock across three hosts in a line (SPEC §6):
# an exclusive holder on n1 makes `flock -n` fail on n2 and n3; three
# shared holders, one per host, show "shared 3" everywhere; kill -9 of
# the exclusive holder hands the lock to a waiter on another host within
# 1 s, and every host shows the new holder; the fencing token grows with
# every exclusive grant, whichever host takes it; a whole-file POSIX
# lock holds across hosts, a byte range is ENOLCK; racing O_EXCL
# creators on the three hosts: exactly one winner per file.
# san: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lock_mesh_lib.sh"
lm_require
lm_up 3 --topology line --set locks.lease=2s
H="n1 n2 n3"
stat_of() { awk -v k="$2" '$1 == k { print $2; exit }' "$(mnt "$1")/.statefs/stats"; }  # the mount's own line comes first
waiters_on() { [ "$(stat_of "$1" lock_waiters)" == "$2" ]; }
everywhere() { # FILE WANT: every host shows it
	local k
	for k in $H; do lock_is "$(mnt "$k")/$1" "$2" || return 1; done
}
shown() { # what each host shows, and how far its lock table got
	local k
	for k in $H; do
		printf '%s=%s (log %s, shared %s); ' "$k" "$(lockx "$(mnt "$k")/$1")" \
			"$(lock_stat "$k" lock_log_index)" "$(lock_stat "$k" lock_held_shared)"
	done
}

echo x >"$(mnt n1)/f" || die "write f on n1"
mkdir -p "$(mnt n1)/excl" || die "mkdir excl on n1"
mesh wait "$M" 20 || die "f did not replicate"

# ---- exclusive on n1: flock -n fails on n2 and n3, and at once ----
(hold ex "$(mnt n1)/f") &
holder=$!
track_pid $holder
wait_for 10 everywhere f "exclusive $(host_of n1) $holder" ||
	die "holder on n1 not shown everywhere: $(shown f)"
for k in n2 n3; do
	timed flock -n "$(mnt "$k")/f" true
	expect_eq $RC 1 "flock -n on $k while n1 holds"
	[ $MS -lt 1000 ] || fail "flock -n on $k took $MS ms"
	flock -s -n "$(mnt "$k")/f" true
	expect_eq $? 1 "flock -s -n on $k while n1 holds exclusive"
done
flock -n "$(mnt n1)/f" true
expect_eq $? 1 "flock -n on n1 itself while n1 holds"
kill -9 $holder
wait $holder 2>/dev/null
wait_for 10 everywhere f unlocked || fail "f after the holder died: $(shown f)"
for k in $H; do
	flock -n "$(mnt "$k")/f" true
	expect_eq $? 0 "flock -n on $k once free"
done

# ---- shared: one holder per host, counted everywhere ----
pids=()
for k in $H; do
	(hold sh "$(mnt "$k")/f") &
	pids+=($!)
	track_pid $!
done
wait_for 10 everywhere f "shared 3" || fail "shared count: $(shown f)"
for k in $H; do
	flock -n "$(mnt "$k")/f" true
	expect_eq $? 1 "exclusive flock -n on $k while shared by 3 hosts"
	flock -s -n "$(mnt "$k")/f" true
	expect_eq $? 0 "shared flock -n on $k while shared"
done
kill -9 "${pids[@]}"
wait "${pids[@]}" 2>/dev/null
wait_for 10 everywhere f unlocked || fail "f after the shared holders died: $(shown f)"

# ---- kill -9 of the holder on n1: a waiter on n2 gets it within 1 s ----
(hold ex "$(mnt n1)/f") &
holder=$!
track_pid $holder
wait_for 10 everywhere f "exclusive $(host_of n1) $holder" ||
	die "second holder not shown: $(shown f)"
t0=$(token "$(mnt n1)/f")
(hold ex "$(mnt n2)/f" "$T/got") &
waiter=$!
track_pid $waiter
wait_for 10 waiters_on n2 1 || fail "the waiter on n2 is not queued: $(stat_of n2 lock_waiters)"
[ -e "$T/got" ] && fail "the waiter on n2 got the lock while n1 held it"
killed=$(now_ms)
kill -9 $holder
wait $holder 2>/dev/null
wait_for 10 test -s "$T/got" || die "the waiter on n2 did not get the lock after kill -9"
handover=$(($(cat "$T/got") - killed))
echo "handover n1 (kill -9) -> n2: $handover ms"
[ $handover -lt 1000 ] || fail "handover took $handover ms, want < 1000"
wait_for 10 everywhere f "exclusive $(host_of n2) $waiter" ||
	fail "n2's holder not shown everywhere: $(shown f)"
t1=$(token "$(mnt n3)/f")
[ "$t1" -gt "$t0" ] 2>/dev/null || fail "token did not grow from n1's grant ($t0) to n2's ($t1)"
kill -9 $waiter
wait $waiter 2>/dev/null
wait_for 10 everywhere f unlocked || fail "f after n2's holder died: $(shown f)"

# ---- the token grows with every exclusive grant, on any host, and
# every host reads the same value while it is held ----
prev=$t1
for k in n3 n1 n2 n3 n2 n1; do
	got=$(flock "$(mnt "$k")/f" -c "getfattr --absolute-names --only-values -n user.statefs.lock.token $(mnt "$k")/f")
	[[ $got =~ ^[0-9]+$ ]] || { fail "token read on $k: '$got'"; continue; }
	[ "$got" -gt "$prev" ] || fail "token on $k: $got after $prev"
	prev=$got
done
(hold ex "$(mnt n3)/f") &
holder=$!
track_pid $holder
wait_for 10 everywhere f "exclusive $(host_of n3) $holder" || fail "n3's holder: $(shown f)"
tk=$(token "$(mnt n3)/f")
[ "$tk" -gt "$prev" ] 2>/dev/null || fail "token of n3's holder: $tk after $prev"
for k in n1 n2; do
	wait_output 5 "$tk" token "$(mnt "$k")/f" ||
		fail "token on $k: '$(token "$(mnt "$k")/f")', on n3 '$tk'"
done
kill -9 $holder
wait $holder 2>/dev/null
# a shared grant does not take a token
flock -s "$(mnt n1)/f" true
expect_eq "$(token "$(mnt n2)/f")" "$tk" "token after a shared grant"

# ---- POSIX locks: whole-file ones are mesh-wide, byte ranges ENOLCK ----
cat >"$T/posix.py" <<'EOF'
import errno, fcntl, os, signal, sys
# posix.py FILE hold|try|range: hold a whole-file write lock until
# killed (print "held"), try one without waiting, or try a byte range
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    if sys.argv[2] == "range":
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
    else:
        fcntl.lockf(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if sys.argv[2] == "try" else 0))
except OSError as e:
    print(errno.errorcode[e.errno], flush=True)
    sys.exit(1)
print("held" if sys.argv[2] == "hold" else "got", flush=True)
if sys.argv[2] == "hold":
    while True:
        signal.pause()
EOF
"$PY" "$T/posix.py" "$(mnt n1)/f" hold >"$T/posix.held" &
ph=$!
track_pid $ph
wait_for 10 grep -qx held "$T/posix.held" || die "no whole-file POSIX lock on n1: $(cat "$T/posix.held")"
for k in n2 n3; do
	expect_eq "$("$PY" "$T/posix.py" "$(mnt "$k")/f" try)" EAGAIN "F_SETLK on $k while n1 holds a POSIX lock"
done
expect_eq "$("$PY" "$T/posix.py" "$(mnt n2)/f" range)" ENOLCK "a byte-range F_SETLK on a mesh mount"
kill -9 $ph
wait $ph 2>/dev/null
try_posix() { [ "$("$PY" "$T/posix.py" "$(mnt n3)/f" try)" = got ]; }
wait_for 10 try_posix || fail "F_SETLK on n3 after n1's POSIX holder died: $("$PY" "$T/posix.py" "$(mnt n3)/f" try)"

# ---- O_EXCL: creators on the three hosts race for each new file ----
# Each racer spins until the same instant, then open(O_CREAT|O_EXCL).
cat >"$T/excl.py" <<'EOF'
import errno, os, sys, time
path, at, me = sys.argv[1], int(sys.argv[2]), sys.argv[3]
while time.time_ns() < at:
    pass
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(1)
os.write(fd, me.encode())
os.close(fd)
print("WON")
EOF
rounds=5
for r in $(seq $rounds); do
	at=$(($(date +%s%N) + 300000000))
	rp=()
	for k in $H; do
		"$PY" "$T/excl.py" "$(mnt "$k")/excl/f$r" "$at" "$k" >"$T/excl.$r.$k" 2>&1 &
		rp+=($!)
		track_pid $!
	done
	wait "${rp[@]}"
	wins=$(cat "$T"/excl.$r.* | grep -c '^WON$')
	eexist=$(cat "$T"/excl.$r.* | grep -c '^EEXIST$')
	expect_eq "$wins/$eexist" "1/2" "round $r: winners/EEXIST ($(cat "$T"/excl.$r.* | tr '\n' ' '))"
done
mesh wait "$M" 20 || fail "digests differ after the O_EXCL rounds"
for r in $(seq $rounds); do
	winner=$(grep -l '^WON$' "$T"/excl.$r.* | head -1)
	winner=${winner##*.}
	for k in $H; do
		expect_eq "$(cat "$(mnt "$k")/excl/f$r" 2>&1)" "$winner" "excl/f$r on $k"
	done
done
# noclobber from bash, the same race through the shell
for r in $(seq 3); do
	rp=()
	for k in $H; do
		(set -o noclobber; echo "$k" >"$(mnt "$k")/excl/s$r") >"$T/nc.$r.$k" 2>&1 &
		rp+=($!)
	done
	wait "${rp[@]}"
	wins=0
	for k in $H; do [ -s "$T/nc.$r.$k" ] || wins=$((wins + 1)); done
	expect_eq $wins 1 "noclobber round $r winners"
done
# the reserved lock paths of O_EXCL do not show as files
for k in $H; do
	[ -z "$(find "$(mnt "$k")/" -name '!*' 2>&1)" ] || fail "a '!' lock path shows on $k"
done
mesh_logs_clean "$M"
finish
