#!/usr/bin/env bash
# fs_unlinked.sh — ftruncate, fchmod, fchown and futimens on an open file
# that was unlinked (or replaced by a rename, or deleted by statefsctl)
# act on the open file, as on tmpfs: they succeed, fstat through that
# descriptor shows what they changed, and nothing reaches the store.
# san: yes
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
M=$T/mnt
mount_statefs "$T/store" "$M"

cat >"$T/unl.py" <<'PY'
import os, sys
m, how, ctl, store = sys.argv[1:5]
fails = 0
def check(got, want, what):
    global fails
    if got != want:
        print("FAIL: %s: %s: got %r, want %r" % (how, what, got, want))
        fails += 1
p = os.path.join(m, "f-" + how)
open(p, "w").write("0123456789")
fd = os.open(p, os.O_RDWR)
if how == "unlink":
    os.unlink(p)
elif how == "rename":
    open(p + ".new", "w").write("new")
    os.rename(p + ".new", p)
else:   # deleted through the store, not through this mount
    import subprocess, time
    subprocess.check_call([ctl, "-s", store, "del", "/f-" + how])
    deadline = time.time() + 5
    while os.path.exists(p) and time.time() < deadline:
        time.sleep(0.01)
for what, call in (("ftruncate", lambda: os.ftruncate(fd, 4)),
                   ("fchmod", lambda: os.fchmod(fd, 0o600)),
                   ("fchown", lambda: os.fchown(fd, 1234, 5678)),
                   ("futimens", lambda: os.utime(fd, ns=(1, 981173106 * 10**9)))):
    try:
        call()
    except OSError as e:
        check(e.strerror, "success", what)
st = os.fstat(fd)
check(st.st_size, 4, "size after ftruncate")
check(st.st_mode & 0o7777, 0o600, "mode after fchmod")
check((st.st_uid, st.st_gid), (1234, 5678), "owner after fchown")
check(st.st_mtime_ns, 981173106 * 10**9, "mtime after futimens")
check(st.st_nlink, 0, "nlink")
if how == "unlink":
    check(os.pread(fd, 100, 0), b"0123", "read after ftruncate")
os.close(fd)
if how == "rename":
    check(open(p).read(), "new", "the file that replaced it")
    check(os.stat(p).st_mode & 0o7777 != 0o600, True, "mode of the file that replaced it")
else:
    check(os.path.exists(p), False, "nothing published")
sys.exit(1 if fails else 0)
PY
for how in unlink rename foreign; do
	python3 "$T/unl.py" "$M" $how "$STATEFSCTL" "$T/store" || fail "open file after $how (see above)"
done
finish
