#!/usr/bin/env bash
# lock_mesh_checker.sh — mutual exclusion under load, checked from a log
# (SPEC §4, §6). Three hosts in a line, three workers per host, each
# taking and releasing random exclusive and shared flocks on three paths
# through its own host's mount for about 8 s. A worker logs every hold as
# an interval of CLOCK_MONOTONIC (one clock for every process of this
# machine): taken right after flock() returns, right before it unlocks,
# so a logged interval lies inside the real one. The checker then asserts
# that on each path no exclusive interval overlaps any other interval,
# that the fencing tokens read while holding exclusive grow with time on
# each path, that every worker made progress, and that shared holds did
# overlap somewhere (or the test would prove little).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lock_mesh_lib.sh"
lm_require
lm_up 3 --topology line --set locks.lease=2s
H="n1 n2 n3"
for p in a b c; do echo "$p" >"$(mnt n1)/$p" || die "write $p"; done
mesh wait "$M" 20 || die "a b c did not replicate"

cat >"$T/worker.py" <<'EOF'
import fcntl, os, random, sys, time
mnt, host, secs, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
out = []
end = time.monotonic() + secs
errors = 0
while time.monotonic() < end:
    path = rnd.choice("abc")
    ex = rnd.random() < 0.5
    fd = os.open(os.path.join(mnt, path), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if ex else fcntl.LOCK_SH)
    except OSError as e:
        errors += 1
        os.close(fd)
        out.append("error %s %s %s\n" % (host, path, e.strerror))
        continue
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    tok = "-"
    if ex:
        tok = os.getxattr(os.path.join(mnt, path), "user.statefs.lock.token").decode()
    time.sleep(rnd.random() * 0.02)
    t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    out.append("%s %s %s %d %d %s %d\n" % ("ex" if ex else "sh", path, host,
               t0, t1, tok, os.getpid()))
sys.stdout.write("".join(out))
sys.exit(1 if errors else 0)
EOF

cat >"$T/check.py" <<'EOF'
import sys
holds, errors = {}, []
for line in open(sys.argv[1]):
    w = line.split()
    if w[0] == "error":
        errors.append(line.strip())
        continue
    holds.setdefault(w[1], []).append((int(w[3]), int(w[4]), w[0], w[2], w[5], w[6]))
bad = 0
def say(msg):
    global bad
    bad += 1
    if bad <= 10:
        print("VIOLATION", msg)
total = overlaps_sh = 0
for path, iv in sorted(holds.items()):
    iv.sort()
    total += len(iv)
    # every interval against the later ones that start before it ends
    for i, (a0, a1, am, ah, at, ap) in enumerate(iv):
        for b0, b1, bm, bh, bt, bp in iv[i + 1:]:
            if b0 >= a1:
                break
            if am == "ex" or bm == "ex":
                say("%s: %s %s/%s [%d,%d] overlaps %s %s/%s [%d,%d]" %
                    (path, am, ah, ap, a0, a1, bm, bh, bp, b0, b1))
            else:
                overlaps_sh += 1
    toks = [(a0, int(at), ah) for a0, a1, am, ah, at, ap in iv if am == "ex"]
    for (t0, k0, h0), (t1, k1, h1) in zip(toks, toks[1:]):
        if k1 <= k0:
            say("%s: token %d (%s) after %d (%s)" % (path, k1, h1, k0, h0))
for e in errors:
    say(e)
print("holds %d shared_overlaps %d violations %d" % (total, overlaps_sh, bad))
sys.exit(1 if bad else 0)
EOF

secs=8
wp=()
i=0
for k in $H; do
	for w in 1 2 3; do
		i=$((i + 1))
		"$PY" "$T/worker.py" "$(mnt "$k")" "$k" $secs $((RANDOM * 100 + i)) >"$T/log.$k.$w" 2>"$T/err.$k.$w" &
		wp+=($!)
		track_pid $!
	done
done
failed_w=0
for p in "${wp[@]}"; do wait "$p" || failed_w=$((failed_w + 1)); done
expect_eq $failed_w 0 "workers that failed ($(cat "$T"/err.* | head -3))"
for k in $H; do
	for w in 1 2 3; do
		n=$(grep -c '^[es][xh] ' "$T/log.$k.$w")
		[ "$n" -ge 5 ] || fail "worker $w on $k made only $n holds in $secs s"
	done
done
cat "$T"/log.* >"$T/all"
echo "holds per host: $(for k in $H; do printf '%s=%s ' "$k" "$(cat "$T"/log.$k.* | grep -c '^[es][xh] ')"; done)"
"$PY" "$T/check.py" "$T/all" || fail "the lock log shows a violation (above)"
grep -q ' shared_overlaps 0 ' <("$PY" "$T/check.py" "$T/all") &&
	fail "no two shared holds overlapped: shared locks were never concurrent"
for k in $H; do
	for p in a b c; do
		wait_for 5 lock_is "$(mnt "$k")/$p" unlocked ||
			fail "$p's lock on $k at the end: $(lockx "$(mnt "$k")/$p")"
	done
done
mesh_logs_clean "$M"
finish
