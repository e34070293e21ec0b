#!/usr/bin/env bash
# fs_stress.sh — the mount keeps its promises under load: for a bounded
# time (40 s; 20 s on the sanitized build) writers with and without
# O_TRUNC, readers, stat and ls loops and renames run together on one
# mount, and every value any reader gets must be whole.
#
# Every value is self-checking: "LLLLLLLL:CCCCCCCC:" (length of the whole
# value and CRC-32 of the payload, hex) and a payload of 0..20,000 bytes
# (so values span pages and reads of several requests). A reader counts
# a value as cut or mixed when its length or checksum is wrong.
#
# Writers: with O_TRUNC in 1..3 write(2)s; or without (O_WRONLY, pwrite
# at 0, ftruncate to the new length), with stat(2) of the path and
# fstat(2) before close (the stat that left a stale size cached). Hot
# files are written all the time; cold files every few seconds (the
# driver once let readers use the page cache after a second without a
# writer, and this test caught them cut or mixed). A renamer writes
# whole values to a temporary name and renames them over cold files.
# Readers read to EOF (as cat does); stat and ls -l loops run beside.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
mount_statefs "$T/store" "$M"
DURATION=${STATEFS_STRESS_SECONDS:-40}
[[ $BIN == *build-san ]] && DURATION=${STATEFS_STRESS_SECONDS:-20}

cat >"$T/stress.py" <<'PY'
import os, random, sys, time, zlib, stat as st_

root, duration, outdir = sys.argv[1], float(sys.argv[2]), sys.argv[3]
HOT = ["hot%d" % i for i in range(4)]
COLD = ["cold%d" % i for i in range(12)]
deadline = time.monotonic() + duration

def value(rng):
    n = rng.choice([0, 1, 10, 100, 1000, 4095, 4096, 4097, 9000, 20000])
    n = max(0, n + rng.randint(-5, 5))
    payload = bytes([rng.randint(97, 122)]) * n
    if n > 3:
        payload = payload[:-3] + b"%03d" % (n % 1000)
    head = b"%08d:%08x:" % (18 + n, zlib.crc32(payload))
    return head + payload

def whole(v):
    if len(v) < 18 or v[8:9] != b":" or v[17:18] != b":":
        return False
    try:
        n, crc = int(v[:8]), int(v[9:17], 16)
    except ValueError:
        return False
    return n == len(v) and zlib.crc32(v[18:]) == crc

def p(name):
    return os.path.join(root, name)

def writer(k):
    rng = random.Random(k)
    n = 0
    next_cold = time.monotonic() + rng.uniform(0, 2)
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_cold:
            name = rng.choice(COLD)
            next_cold = now + rng.uniform(1.5, 4.5)
        else:
            name = rng.choice(HOT)
        v = value(rng)
        try:
            if rng.random() < 0.5:
                fd = os.open(p(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                cuts = sorted(rng.sample(range(len(v) + 1), 2))
                for a, b in ((0, cuts[0]), (cuts[0], cuts[1]), (cuts[1], len(v))):
                    if b > a:
                        os.write(fd, v[a:b])
            else:
                fd = os.open(p(name), os.O_WRONLY | os.O_CREAT, 0o644)
                os.pwrite(fd, v, 0)
                os.ftruncate(fd, len(v))
                os.stat(p(name))
                os.fstat(fd)
            os.close(fd)
            n += 1
        except FileNotFoundError:
            pass
        time.sleep(rng.uniform(0, 0.004))
    return n

def renamer(k):
    rng = random.Random(1000 + k)
    n = 0
    while time.monotonic() < deadline:
        tmp = p(".tmp%d" % k)
        with open(tmp, "wb") as f:
            f.write(value(rng))
        os.rename(tmp, p(rng.choice(COLD)))
        n += 1
        time.sleep(rng.uniform(0.5, 1.5))
    return n

def reader(k):
    rng = random.Random(2000 + k)
    checked = bad = 0
    while time.monotonic() < deadline:
        name = rng.choice(HOT + COLD + COLD)
        try:
            with open(p(name), "rb") as f:
                v = f.read()
        except FileNotFoundError:
            continue
        checked += 1
        if not whole(v):
            bad += 1
            if bad <= 5:
                print("reader %d: %s cut or mixed: %d bytes, head %r" %
                      (k, name, len(v), v[:18]), file=sys.stderr)
    return "%d %d" % (checked, bad)

def statter(k):
    n = 0
    while time.monotonic() < deadline:
        for name in HOT + COLD:
            try:
                os.stat(p(name))
            except FileNotFoundError:
                pass
            n += 1
    return n

def lister(k):
    n = 0
    while time.monotonic() < deadline:
        for e in os.scandir(root):
            try:
                e.stat()
            except FileNotFoundError:
                pass
        n += 1
        time.sleep(0.01)
    return n

roles = [("writer", writer)] * 6 + [("renamer", renamer)] + \
        [("reader", reader)] * 4 + [("statter", statter), ("lister", lister)]
pids = []
for i, (name, fn) in enumerate(roles):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            r = fn(i)
            with open(os.path.join(outdir, "%s.%d" % (name, i)), "w") as f:
                f.write("%s\n" % r)
        except BaseException as e:
            print("%s %d: %r" % (name, i, e), file=sys.stderr)
            code = 1
        os._exit(code)
    pids.append(pid)
rc = 0
for pid in pids:
    _, status = os.waitpid(pid, 0)
    if status != 0:
        rc = 1
sys.exit(rc)
PY

mkdir "$M/s" "$T/out"
# seed every file with a whole value
python3 - "$M/s" <<'PY'
import os, sys, zlib
for n in ["hot%d" % i for i in range(4)] + ["cold%d" % i for i in range(12)]:
    v = b"seed"
    open(os.path.join(sys.argv[1], n), "wb").write(b"%08d:%08x:" % (18 + len(v), zlib.crc32(v)) + v)
PY
start=$SECONDS
timeout -k 5 $((DURATION + 60)) python3 "$T/stress.py" "$M/s" "$DURATION" "$T/out" &
spid=$!
track_pid $spid
wait $spid || fail "stress workers failed (rc $?)"
elapsed=$((SECONDS - start))
kill -0 "$STATEFS_PID" 2>/dev/null || die "statefs died: $(tail -30 "$T/statefs.log")"

checked=0 bad=0
for f in "$T"/out/reader.*; do read -r c b <"$f"; checked=$((checked + c)); bad=$((bad + b)); done
sum() { awk '{ s += $1 } END { print s + 0 }' "$@"; }
writes=$(sum "$T"/out/writer.*)
renames=$(sum "$T"/out/renamer.*)
echo "stress: ${elapsed}s, $writes writes, $renames renames," \
	"$(sum "$T"/out/statter.*) stats, $(sum "$T"/out/lister.*) listings," \
	"$checked values checked, $bad cut or mixed"
[ "$checked" -gt 1000 ] || fail "only $checked values checked"
expect_eq "$bad" "0" "cut or mixed values in $checked"
# after the load, every file holds a whole value, also through the cache
for f in "$M"/s/*; do
	python3 - "$f" <<'PY' || fail "$f not whole after the load"
import sys, zlib
v = open(sys.argv[1], "rb").read()
n, crc = int(v[:8]), int(v[9:17], 16)
sys.exit(0 if n == len(v) and zlib.crc32(v[18:]) == crc else 1)
PY
done
finish
