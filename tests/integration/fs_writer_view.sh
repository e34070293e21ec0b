#!/usr/bin/env bash
# fs_writer_view.sh — a writer sees its own unpublished data through its
# descriptor (fstat, lseek(SEEK_END), read), also from another thread of
# its process, while everyone else sees the published value; fallocate
# works on the buffer (mode 0 extends with zeros and never shrinks,
# punch hole zeroes, unsupported modes are EOPNOTSUPP, past maxvalue
# EFBIG), so glibc's posix_fallocate no longer falls back to writing
# zeros over unpublished bytes.
# san: yes
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
M=$T/mnt
mount_statefs "$T/store" "$M"

cat >"$T/view.py" <<'PY'
import errno, os, subprocess, sys, threading
m = sys.argv[1]
fails = 0
def check(got, want, what):
    global fails
    if got != want:
        print("FAIL: %s: got %.200r, want %.200r" % (what, got, want))
        fails += 1
# Another process, started before any file is open: a child started
# later would inherit the writer's descriptor and close it at exec,
# and every close publishes.
obs = subprocess.Popen([sys.executable, "-c", """
import os, sys
for line in sys.stdin:
    p = line.rstrip("\\n")
    try:
        v = open(p, "rb").read()
        print(os.stat(p).st_size, v.hex(), flush=True)
    except OSError as e:
        print(-1, e.errno, flush=True)
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
def other(p):
    obs.stdin.write(p + "\n"); obs.stdin.flush()
    size, val = obs.stdout.readline().rstrip("\n").split(" ")
    return int(size), bytes.fromhex(val)
def other_size(p):      # another process's stat
    return other(p)[0]
def other_read(p):
    return other(p)[1]

# a new file: 10 bytes written, nothing published
p = os.path.join(m, "new")
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"0123456789")
check(os.fstat(fd).st_size, 10, "new file: writer's fstat")
check(os.lseek(fd, 0, os.SEEK_END), 10, "new file: writer's lseek(SEEK_END)")
r = []
t = threading.Thread(target=lambda: r.append(os.fstat(fd).st_size))
t.start(); t.join()
check(r, [10], "new file: fstat from another thread of the writer")
check(other_size(p), 0, "new file: another process's stat")
check(other_read(p), b"", "new file: another process's read")
os.close(fd)
check(other_read(p), b"0123456789", "new file: after close")

# O_RDWR|O_APPEND of 3 bytes to a 10-byte file
p = os.path.join(m, "app")
open(p, "wb").write(b"abcdefghij")
fd = os.open(p, os.O_RDWR | os.O_APPEND)
os.write(fd, b"XYZ")
check(os.fstat(fd).st_size, 13, "append: writer's fstat")
check(os.pread(fd, 100, 0), b"abcdefghijXYZ", "append: writer's pread")
check(os.lseek(fd, 0, os.SEEK_END), 13, "append: writer's lseek(SEEK_END)")
os.lseek(fd, 0, os.SEEK_SET)
check(os.read(fd, 100), b"abcdefghijXYZ", "append: writer's read")
check(other_size(p), 10, "append: another process's stat")
check(other_read(p), b"abcdefghij", "append: another process's read")
os.close(fd)
check(other_read(p), b"abcdefghijXYZ", "append: after close")

# posix_fallocate over an unpublished 8 KiB value changes no byte
p = os.path.join(m, "fa")
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"x" * 8192)
os.posix_fallocate(fd, 0, 8192)
check(os.fstat(fd).st_size, 8192, "posix_fallocate inside: size")
check(os.pread(fd, 9000, 0), b"x" * 8192, "posix_fallocate inside: bytes")
os.posix_fallocate(fd, 4096, 6000)        # extends to 10096 with zeros
check(os.fstat(fd).st_size, 10096, "posix_fallocate past the end: size")
os.close(fd)
check(open(p, "rb").read(), b"x" * 8192 + b"\0" * 1904, "posix_fallocate: published value")
fd = os.open(p, os.O_RDWR)
try:
    os.posix_fallocate(fd, 0, 17 << 20)   # past the 16 MiB maxvalue
    check("ok", "EFBIG", "posix_fallocate past maxvalue")
except OSError as e:
    check(errno.errorcode[e.errno], "EFBIG", "posix_fallocate past maxvalue")
os.close(fd)
check(os.stat(p).st_size, 10096, "size after the refused fallocate")
sys.exit(1 if fails else 0)
PY
python3 "$T/view.py" "$M" || fail "writer's view (see above)"

# fallocate(1): punch a hole; an unsupported mode
printf 'abcdefgh' >"$M/ph"
fallocate -p -o 2 -l 3 "$M/ph" || fail "fallocate --punch-hole"
expect_eq "$(od -An -c "$M/ph" | tr -s ' ')" " a b \\0 \\0 \\0 f g h" "punched hole"
expect_fail_msg "Operation not supported" fallocate -c -o 0 -l 4096 "$M/ph"
expect_eq "$(cat "$M/ph" | wc -c)" "8" "size after an unsupported mode"
finish
