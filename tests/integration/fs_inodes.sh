#!/usr/bin/env bash
# fs_inodes.sh — the inode table under renames, deletes it never hears
# of, and files open while their record goes away:
#  - a directory renamed over one that still has a cached node of an
#    expired file (heap use-after-free in the table once; the daemon
#    must live and serve the moved file);
#  - a foreign delete (statefsctl) then a re-create through the mount;
#  - fstat and pread on an fd whose file was unlinked or replaced by a
#    rename give the old record (nlink 0), never ENOENT;
#  - listxattr with a TTL; renames of files and directories keep every
#    cached path right;
#  - own writes of a file with a TTL invalidate nothing;
#  - renames of a directory racing lookups and writes below it.
# san: yes
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
command -v setfattr >/dev/null || skip "setfattr missing (package attr)"
[ -x "$STATEFS" ] || skip "no driver at $STATEFS"
[ -w /proc/sys/vm/drop_caches ] || skip "cannot drop the kernel's caches"

M=$T/mnt
mount_statefs "$T/store" "$M"
alive() { kill -0 "$STATEFS_PID" 2>/dev/null || die "statefs died: $(tail -30 "$T/statefs.log")"; }
stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$M/.statefs/stats"; }
drop() { sync; echo 2 >/proc/sys/vm/drop_caches; }

# ---- 1. rename over a directory holding a stale cached node ----
mkdir "$M/d1" "$M/d2"
echo a >"$M/d2/x"
setfattr -n user.statefs.ttl -v 1 "$M/d2/x"
stat "$M/d2/x" >/dev/null
wait_for 5 bash -c "! stat '$M/d2/x' >/dev/null 2>&1" || fail "d2/x did not expire"
echo b >"$M/d1/x"
stat "$M/d1/x" >/dev/null
mv -T "$M/d1" "$M/d2" || fail "mv -T d1 d2"
drop
expect_eq "$(ls "$M/d2")" "x" "ls d2 after the rename"
expect_eq "$(cat "$M/d2/x")" "b" "d2/x after the rename"
alive
# the same with the stale node one level deeper
mkdir -p "$M/e1/s" "$M/e2/s"
echo a >"$M/e2/s/y"
setfattr -n user.statefs.ttl -v 1 "$M/e2/s/y"
stat "$M/e2/s/y" >/dev/null
wait_for 5 bash -c "! stat '$M/e2/s/y' >/dev/null 2>&1" || fail "e2/s/y did not expire"
rmdir "$M/e2/s"
echo c >"$M/e1/s/y"; stat "$M/e1/s/y" >/dev/null
mv -T "$M/e1/s" "$M/e2/s" || fail "mv -T e1/s e2/s"
drop
expect_eq "$(cat "$M/e2/s/y")" "c" "e2/s/y after the rename"
[ -e "$M/e1/s" ] && fail "e1/s still there"
alive

# ---- 2. a delete the mount never saw, then a re-create ----
echo one >"$M/r"
stat "$M/r" >/dev/null
"$STATEFSCTL" -s "$T/store" del /r || fail "statefsctl del /r"
wait_for 5 bash -c "! test -e '$M/r'" || fail "r still visible after a foreign delete"
echo two >"$M/r"
expect_eq "$(cat "$M/r")" "two" "r re-created after a foreign delete"
drop
expect_eq "$(cat "$M/r")" "two" "r after dropping caches"
alive

# ---- 3. open files of a deleted record ----
cat >"$T/orphan.py" <<'PY'
import os, sys
m, how = sys.argv[1], sys.argv[2]
p = os.path.join(m, "o")
with open(p, "w") as f:
    f.write("old value\n")
fd = os.open(p, os.O_RDONLY)
if how == "unlink":
    os.unlink(p)
else:
    with open(os.path.join(m, "o.new"), "w") as f:
        f.write("new\n")
    os.rename(os.path.join(m, "o.new"), p)
st = os.fstat(fd)
print(st.st_size, st.st_nlink, os.pread(fd, 100, 0).decode().strip(),
      os.pread(fd, 100, 4).decode().strip(), len(os.pread(fd, 100, 100)))
os.close(fd)
PY
expect_eq "$(python3 "$T/orphan.py" "$M" unlink 2>&1)" "10 0 old value value 0" "fstat/pread after unlink"
[ -e "$M/o" ] && fail "o still there after unlink"
expect_eq "$(python3 "$T/orphan.py" "$M" rename 2>&1)" "10 0 old value value 0" "fstat/pread after rename over it"
expect_eq "$(cat "$M/o")" "new" "o after the rename over it"
alive

# ---- 4. listxattr with a TTL and user xattrs ----
echo v >"$M/lx"
setfattr -n user.a -v 1 "$M/lx"
setfattr -n user.statefs.ttl -v 600 "$M/lx"
expect_eq "$(getfattr --absolute-names -d -m - "$M/lx" | grep -c '^user\.')" "2" "listxattr names"
expect_eq "$(python3 -c 'import os,sys; print(sorted(os.listxattr(sys.argv[1])))' "$M/lx")" \
	"['user.a', 'user.statefs.ttl']" "listxattr list"

# ---- 5. file and directory renames keep cached paths ----
mkdir -p "$M/p/q"
echo 1 >"$M/p/q/f"; echo 2 >"$M/p/g"
exec 7<"$M/p/q/f"
mv "$M/p" "$M/p2"
mv "$M/p2/g" "$M/p2/q/g"
expect_eq "$(cat "$M/p2/q/f") $(cat "$M/p2/q/g")" "1 2" "values after renames"
expect_eq "$(cat <&7)" "1" "fd opened before the rename"
exec 7<&-
echo 3 >"$M/p2/q/f"
drop
expect_eq "$(cat "$M/p2/q/f")" "3" "write through the renamed path"
[ -e "$M/p" ] && fail "p recreated"
[ -e "$M/p2/g" ] && fail "p2/g recreated"
mv "$M/p2/q/f" "$M/p2/q/f" 2>/dev/null
expect_eq "$(cat "$M/p2/q/f")" "3" "rename onto itself"

# ---- 6. own writes of a file with a TTL: no invalidation ----
# (the invalidation thread counts one ops_invalidate per change it
# passes to the kernel; a foreign put is the marker that it got past
# the writes)
echo 0 >"$M/t"
exec 8<"$M/t"  # the kernel keeps this inode (no forget) all along
setfattr -n user.statefs.ttl -v 600 "$M/t"
stat "$M/t" >/dev/null
"$STATEFSCTL" -s "$T/store" put /marker0 m >/dev/null
wait_for 5 test -e "$M/marker0" || fail "marker0 not visible"
wait_for 5 bash -c "[ \"\$(awk '\$1 == \"ops_invalidate\" { print \$2 }' '$M/.statefs/stats')\" -ge 1 ]" ||
	fail "no invalidation counted for a foreign put"
before=$(stat_of ops_invalidate)
for i in $(seq 20); do echo $i >"$M/t"; done
"$STATEFSCTL" -s "$T/store" put /marker1 m >/dev/null
wait_for 5 bash -c "[ \"\$(awk '\$1 == \"ops_invalidate\" { print \$2 }' '$M/.statefs/stats')\" -gt $before ]" ||
	fail "foreign put not invalidated"
expect_eq "$(stat_of ops_invalidate)" "$((before + 1))" "invalidations for 20 own writes + 1 foreign put"
expect_eq "$(cat "$M/t")" "20" "t after the writes"
exec 8<&-

# ---- 7. directory renames racing lookups and writes below them ----
mkdir -p "$M/ra/sub"
for i in $(seq 20); do echo $i >"$M/ra/sub/f$i"; done
(for i in $(seq 150); do mv "$M/ra" "$M/rb" 2>/dev/null; mv "$M/rb" "$M/ra" 2>/dev/null; done) &
R=$!; track_pid $R
(for i in $(seq 400); do
	for d in ra rb; do cat "$M/$d/sub/f$((i % 20 + 1))" >/dev/null 2>&1; ls "$M/$d/sub" >/dev/null 2>&1; done
done) &
L=$!; track_pid $L
(for i in $(seq 200); do for d in ra rb; do { echo w$i >"$M/$d/sub/w"; } 2>/dev/null; done; done) &
W=$!; track_pid $W
wait $R $L $W
alive
for d in ra rb; do [ -e "$M/$d" ] && break; done
[ -e "$M/ra" ] && [ -e "$M/rb" ] && fail "both ra and rb exist"
drop
expect_eq "$(ls "$M/$d/sub" | wc -l)" "21" "entries after the race"
for i in $(seq 20); do
	expect_eq "$(cat "$M/$d/sub/f$i")" "$i" "$d/sub/f$i after the race"
done
for f in "$M/$d"/sub/*; do stat "$f" >/dev/null || fail "stat $f"; done
expect_eq "$("$STATEFSCTL" -s "$T/store" ls -R / | grep -c '^/r[ab]/sub/')" "21" "store entries after the race"
alive
grep -Ei "error|sanitizer|runtime error" "$T/statefs.log" && fail "daemon logged errors"
finish
