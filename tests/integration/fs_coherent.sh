#!/usr/bin/env bash
# fs_coherent.sh — after a publish the kernel holds the published size
# and pages: a writer that opens without O_TRUNC, writes, and is
# stat(2)ed by anyone before it closes must not leave the old size
# cached (readers were cut to it: "hell" of "hello world\n", or nothing
# at all of a new file's value). Also through a second mount of the
# same store (the invalidation thread).
#
# The pauses of 1.2 s are the issue's scenario, not waits for a
# condition: read-only opens within a second of a write open used to
# bypass the page cache, which hid the stale size.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
mount_statefs "$T/store" "$M"

write_stat_close() { # file value: pwrite at 0 without O_TRUNC, stat, close
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.pwrite(fd, sys.argv[2].encode(), 0)
os.stat(sys.argv[1])
os.close(fd)' "$1" "$2"
}

# An existing file, the issue's repro.
echo abc >"$M/f"
cat "$M/f" >/dev/null
sleep 1.2
write_stat_close "$M/f" $'hello world\n'
sleep 1.2
expect_eq "$(cat "$M/f")" "hello world" "old file: value after a stat during the write"
expect_eq "$(stat -c %s "$M/f")" "12" "old file: size"

# A new, empty file.
: >"$M/g"
sleep 1.2
write_stat_close "$M/g" $'new value\n'
sleep 1.2
expect_eq "$(cat "$M/g")" "new value" "new file: value after a stat during the write"

# At once after close, without the pause (close-to-open on this host).
echo abc >"$M/h"
sleep 1.2
write_stat_close "$M/h" $'hello world\n'
expect_eq "$(cat "$M/h")" "hello world" "value at once after close"

# A reader that opened before the writer and reads again after the
# publish: the pages it cached were dropped.
echo abc >"$M/k"
sleep 1.2
exec 7<"$M/k"
head -c 100 <&7 >/dev/null
write_stat_close "$M/k" $'hello world\n'
pread7() { python3 -c 'import os; print(os.pread(7, 100, 0).decode() + "|", end="")'; }
got=$(pread7)
deadline=$((SECONDS + 5))
while [ "$got" != $'hello world\n|' ] && [ $SECONDS -lt $deadline ]; do
	sleep 0.01
	got=$(pread7)
done
expect_eq "$got" $'hello world\n|' "pread of a descriptor opened before the publish"
exec 7<&-

# Another mount of the same store sees the whole value too.
M2=$T/mnt2
mount_statefs "$T/store" "$M2"
echo abc >"$M/m"
wait_for 5 bash -c "[ \"\$(cat '$M2/m')\" = abc ]" || fail "second mount: first value"
stat "$M2/m" >/dev/null
sleep 1.2
write_stat_close "$M/m" $'hello world\n'
wait_for 5 bash -c "[ \"\$(cat '$M2/m')\" = 'hello world' ]" ||
	fail "second mount: got '$(cat "$M2/m")', want 'hello world'"
finish
