#!/usr/bin/env bash
# lock_posix.sh — fcntl record locks through a real mount (SPEC §4):
# F_SETLK conflict (EAGAIN) between two processes, F_GETLK naming the
# holder's pid and range, byte ranges, F_SETLKW waiting and getting the
# lock, release on close and on kill -9.
# san: yes
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
[ -x "$STATEFS" ] || skip "no driver at $STATEFS"

M=$T/mnt
mount_statefs "$T/store" "$M"
cd "$M" || die "cd $M"
stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$M/.statefs/stats"; }
stat_is() { [ "$(stat_of "$1")" == "$2" ]; }

# plk.py CMD FILE [TYPE START LEN]: one fcntl operation, prints the result.
#   hold TYPE START LEN   F_SETLK then wait until stdin closes (or killed)
#   holdw TYPE START LEN  F_SETLKW, print "got", then wait like hold
#   try TYPE START LEN    F_SETLK: "ok" or the errno name
#   get TYPE START LEN    F_GETLK: "unlocked" or "TYPE START LEN PID"
#   closeopen             open twice, lock via one fd, close the other:
#                         POSIX drops the process's locks on any close
cat >"$T/plk.py" <<'EOF'
import errno, fcntl, os, struct, sys
os.closerange(3, 65536)  # other holders' fifo ends, inherited from bash
FMT = "hhqqi4x"
T = {"r": fcntl.F_RDLCK, "w": fcntl.F_WRLCK, "u": fcntl.F_UNLCK}
N = {fcntl.F_RDLCK: "r", fcntl.F_WRLCK: "w", fcntl.F_UNLCK: "u"}
cmd, path = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
def fl(a):
    return struct.pack(FMT, T[a[0]], os.SEEK_SET, int(a[1]), int(a[2]), 0)
def out(s):
    sys.stdout.write(s + "\n"); sys.stdout.flush()
if cmd in ("hold", "holdw"):
    fcntl.fcntl(fd, fcntl.F_SETLKW if cmd == "holdw" else fcntl.F_SETLK,
                fl(sys.argv[3:6]))
    out("got")
    sys.stdin.read()
elif cmd == "try":
    try:
        fcntl.fcntl(fd, fcntl.F_SETLK, fl(sys.argv[3:6])); out("ok")
    except OSError as e:
        out(errno.errorcode[e.errno])
elif cmd == "get":
    t, w, s, l, p = struct.unpack(FMT, fcntl.fcntl(fd, fcntl.F_GETLK,
                                                   fl(sys.argv[3:6])))
    out("unlocked" if t == fcntl.F_UNLCK else "%s %d %d %d" % (N[t], s, l, p))
elif cmd == "closeopen":
    fd2 = os.open(path, os.O_RDONLY)
    fcntl.fcntl(fd, fcntl.F_SETLK, fl(["w", 0, 0]))
    os.close(fd2)
    out("closed")
    sys.stdin.read()
EOF
plk() { python3 "$T/plk.py" "$@"; }

# start_holder NAME ARGS...: a background plk whose stdin is a fifo we
# keep open; closing it (release NAME) makes the holder close and exit.
start_holder() {
	local name=$1; shift
	mkfifo "$T/$name.in"
	python3 "$T/plk.py" "$@" <"$T/$name.in" >"$T/$name.out" 2>&1 &
	eval "${name}_pid=$!"
	track_pid $!
	exec {fd}>"$T/$name.in"
	eval "${name}_fd=$fd"
}
release() { local v=${1}_fd; eval "exec ${!v}>&-"; }
got() { grep -qx got "$T/$1.out"; }

# ---- whole-file write lock: EAGAIN for another process, GETLK names it ----
start_holder a hold f w 0 0
wait_for 10 got a || die "holder a did not lock: $(cat "$T/a.out")"
expect_eq "$(plk try f w 0 0)" EAGAIN "F_SETLK write while write-locked"
expect_eq "$(plk try f r 10 5)" EAGAIN "F_SETLK read while write-locked"
expect_eq "$(plk get f r 0 0)" "w 0 0 $a_pid" "F_GETLK while write-locked"
expect_eq "$(stat_of locks_held_exclusive)" 1 "stats: exclusive held"
# a waiter blocks, then gets it when the holder closes
start_holder b holdw f w 0 0
wait_for 10 stat_is lock_waiters 1 || fail "F_SETLKW waiter not queued"
got b && fail "waiter got the lock while it was held"
release a
wait_for 10 got b || fail "F_SETLKW waiter not granted after close"
wait $a_pid
expect_eq "$(plk get f w 0 0)" "w 0 0 $b_pid" "F_GETLK names the new holder"
# kill -9 of the holder frees it
kill -9 $b_pid
wait $b_pid 2>/dev/null
try_ok() { [ "$(plk try "$1" w 0 0)" == ok ]; }
wait_for 10 try_ok f ||
	fail "lock not freed by kill -9: $(plk get f w 0 0)"
expect_eq "$(plk get f w 0 0)" unlocked "F_GETLK after kill -9"

# ---- byte ranges: disjoint ranges coexist, overlaps conflict ----
start_holder c hold g w 0 10
wait_for 10 got c || die "holder c did not lock"
start_holder d hold g r 10 10
wait_for 10 got d || fail "disjoint range 10..19 refused: $(cat "$T/d.out")"
expect_eq "$(plk try g w 5 10)" EAGAIN "write lock over 5..14"
expect_eq "$(plk try g r 15 10)" ok "read lock over a read-locked range"
expect_eq "$(plk try g w 25 10)" ok "write lock past both ranges"
expect_eq "$(plk get g r 5 2)" "w 0 10 $c_pid" "F_GETLK of 5..6"
expect_eq "$(plk get g w 12 1)" "r 10 10 $d_pid" "F_GETLK of 12"
expect_eq "$(plk get g r 12 1)" unlocked "F_GETLK read over read"
release c
release d
wait $c_pid $d_pid

# ---- any close by the process drops its POSIX locks ----
start_holder e closeopen h
wait_for 10 grep -qx closed "$T/e.out" || die "closeopen did not run"
expect_eq "$(plk try h w 0 0)" ok "lock after the owner closed another fd"
release e
wait $e_pid

wait_for 10 stat_is locks_held_exclusive 0
expect_eq "$(stat_of locks_held_exclusive)" 0 "exclusive held at the end"
expect_eq "$(stat_of locks_held_shared)" 0 "shared held at the end"
expect_eq "$(stat_of lock_waiters)" 0 "waiters at the end"
cd /
grep -iE "error|fatal" "$T/statefs.log" && fail "driver logged an error"
finish
