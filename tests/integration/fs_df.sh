#!/usr/bin/env bash
# fs_df.sh — df on the mount is true and cheap: its use grows with what is
# written, falls once deleted data is purged (the mount's sweeper runs
# every 10 s; without peers a delete's tombstone goes at once), and
# statvfs stays fast with thousands of records.
# san: yes
. "$(dirname "$0")/../lib.sh"

M=$T/mnt
mount_statefs "$T/store" "$M" -o size=256M

used() { df -B1 --output=used "$M" | tail -1 | tr -d ' '; }

u0=$(used)
head -c $((15 << 20)) /dev/urandom >"$T/big"
for i in 0 1 2 3 4 5 6 7 8 9; do cp "$T/big" "$M/big$i" || fail "write big$i"; done
u1=$(used)
[ "$u1" -ge $((u0 + 140 * 1024 * 1024)) ] ||
	fail "df use after writing 150 MB: $u0 -> $u1"
rm "$M"/big? || fail "rm"
# the records' pages come back once the sweeper purged the deletes; the
# binlog keeps its copies up to its cap (a quarter of the map)
fell() { [ "$(used)" -le $((u1 - 90 * 1024 * 1024)) ]; }
wait_for 30 fell || fail "df use did not fall after deleting: $u1 -> $(used)"

# thousands of files and deletes: statvfs stays under a millisecond
python3 - "$M" <<'PY' || fail "statvfs timing"
import os, sys, time
m = sys.argv[1]
os.mkdir(m + "/many")
for i in range(3000):
    with open(f"{m}/many/f{i}", "w") as f:
        f.write("x")
for i in range(0, 3000, 2):
    os.unlink(f"{m}/many/f{i}")
best = min(_t for _t in (
    (lambda t0: (os.statvfs(m), time.perf_counter() - t0)[1])(time.perf_counter())
    for _ in range(200)))
print(f"statvfs best of 200: {best * 1e6:.0f} us")
sys.exit(0 if best < 0.001 else 1)
PY
finish
