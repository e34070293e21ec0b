#!/usr/bin/env bash
# lock_deadlock.sh — crossed byte-range fcntl locks through a real mount:
# process A holds byte 0 and waits for byte 1, process B holds byte 1
# and asks for byte 0. Linux answers EDEADLK at once to the request that
# closes the cycle; A's wait stands and is granted when B closes. Before,
# both blocked until a signal.
# san: yes
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
M=$T/mnt
mount_statefs "$T/store" "$M"

cat >"$T/dl.py" <<'PY'
import errno, fcntl, os, sys, time
path, stats = sys.argv[1], sys.argv[2]
open(path, "w").close()

def waiters():
    for l in open(stats):
        k, v = l.split()
        if k == "lock_waiters":
            return int(v)
a_go_r, a_go_w = os.pipe()      # parent -> A: "take byte 1 now"
a_out_r, a_out_w = os.pipe()    # A -> parent: progress
b_out_r, b_out_w = os.pipe()    # B -> parent
b_go_r, b_go_w = os.pipe()      # parent -> B: "ask byte 0" / "close"

def child(go, out, first, second):
    fd = os.open(path, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX, 1, first)
    os.write(out, b"holding\n")
    os.read(go, 1)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX, 1, second)   # F_SETLKW
        os.write(out, b"got\n")
    except OSError as e:
        name = "EDEADLK" if e.errno == errno.EDEADLK else errno.errorcode[e.errno]
        os.write(out, (name + "\n").encode())
    os.read(go, 1)                                  # then close and exit
    os._exit(0)

a = os.fork()
if a == 0:
    child(a_go_r, a_out_w, 0, 1)
b = os.fork()
if b == 0:
    child(b_go_r, b_out_w, 1, 0)

def line(fd, what):
    buf = b""
    while not buf.endswith(b"\n"):
        c = os.read(fd, 1)
        if not c:
            sys.exit("%s: pipe closed" % what)
        buf += c
    return buf.decode().strip()

rc = 0
def expect(got, want, what):
    global rc
    if got != want:
        print("FAIL: %s: got %r, want %r" % (what, got, want)); rc = 1

expect(line(a_out_r, "A"), "holding", "A holds byte 0")
expect(line(b_out_r, "B"), "holding", "B holds byte 1")
os.write(a_go_w, b"x")            # A waits for byte 1 (held by B)
deadline = time.monotonic() + 10  # until A's request waits in the driver
while waiters() != 1 and time.monotonic() < deadline:
    time.sleep(0.01)
expect(waiters(), 1, "A waiting")
t0 = time.monotonic()
os.write(b_go_w, b"x")            # B asks byte 0: closes the cycle
expect(line(b_out_r, "B"), "EDEADLK", "B's request that closes the cycle")
took = time.monotonic() - t0
if took > 2:
    print("FAIL: EDEADLK after %.1f s, want at once" % took); rc = 1
os.write(b_go_w, b"x")            # B closes: A gets byte 1
expect(line(a_out_r, "A"), "got", "A's wait after B closed")
os.write(a_go_w, b"x")
for p in (a, b):
    os.waitpid(p, 0)
sys.exit(rc)
PY
timeout -k 2 20 python3 "$T/dl.py" "$M/f" "$M/.statefs/stats" || fail "crossed byte-range locks (rc $?)"
expect_eq "$(awk '$1 == "locks_held_exclusive" { print $2 }' "$M/.statefs/stats")" "0" "locks held after both closed"
finish
