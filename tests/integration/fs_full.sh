#!/usr/bin/env bash
# fs_full.sh — a full store and a too large value (SPEC §2, §9).
#  - size=2M: 64 KiB files are written until one fails; the failure is
#    ENOSPC at write(2) or close(2), at once; every file written before
#    is intact; rm frees space and a new write then succeeds; df shows
#    the map size and a use below it.
#  - maxvalue=1M: a value of 1 MiB + 1 is EFBIG at write(2); the file
#    keeps its old value; exactly 1 MiB is accepted.
# Writes go through a perl helper that reports which system call failed
# and with which errno (shell tools do not say which).
# san: yes
. "$(dirname "$0")/../lib.sh"

# wr SRC DST: copy SRC to DST with open/write.../close; prints "ok" or
# "<call> <ERRNO>" (e.g. "close ENOSPC").
wr() {
	perl -MPOSIX -MErrno -e '
		my ($src, $dst) = @ARGV;
		open(my $in, "<:raw", $src) or die "$src: $!";
		local $/; my $d = <$in>; $d = "" unless defined $d;
		sub bad { my ($call) = @_; my ($n) = grep { $!{$_} } keys %!;
			print "$call ", ($n // ($! + 0)), "\n"; exit 1; }
		my $fd = POSIX::open($dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		bad("open") unless defined $fd;
		my $off = 0;
		while ($off < length $d) {
			my $n = POSIX::write($fd, substr($d, $off, 65536), 65536);
			bad("write") unless defined $n;
			$off += $n;
		}
		bad("close") unless defined POSIX::close($fd);
		print "ok\n";' "$1" "$2"
}

# ---- the store fills up ----
M=$T/mnt
mount_statefs "$T/store" "$M" -o size=2M
mkdir "$T/src"
n=0 res=ok
for i in $(seq 1 100); do
	head -c 65536 /dev/urandom >"$T/src/f$i"
	t0=$(date +%s%N)
	res=$(wr "$T/src/f$i" "$M/f$i")
	t1=$(date +%s%N)
	[ "$res" = ok ] || break
	n=$i
done
echo "store of 2 MiB: $n files of 64 KiB written, then: $res"
[ "$res" = "write ENOSPC" ] || [ "$res" = "close ENOSPC" ] ||
	fail "the write that did not fit: got '$res', want ENOSPC at write or close"
[ "$n" -ge 10 ] || fail "only $n files of 64 KiB fit in 2 MiB"
# "at once": the failing copy took less than 2 s
[ $(((t1 - t0) / 1000000)) -lt 2000 ] || fail "ENOSPC took $(((t1 - t0) / 1000000)) ms"
failed=$((n + 1))
# the value that did not fit is not there, not even in part (the file
# itself was created, empty, by open(O_CREAT) before anything was written)
expect_eq "$(stat -c %s "$M/f$failed" 2>&1)" "0" "size of the file whose write failed"
for i in $(seq 1 "$n"); do
	cmp -s "$T/src/f$i" "$M/f$i" || fail "f$i differs after the store filled up"
done
read -r size used <<<"$(df -B1 --output=size,used "$M" | tail -1)"
expect_eq "$size" "2097152" "df size of a size=2M store"
[ "$used" -gt 0 ] && [ "$used" -lt "$size" ] || fail "df used $used, want 0 < used < $size"
rm "$M/f1" "$M/f2" "$M/f3" || fail "rm in a full store"
[ ! -e "$M/f1" ] || fail "f1 still there after rm"
expect_eq "$(wr "$T/src/f$failed" "$M/f$failed")" "ok" "write after rm freed space"
cmp -s "$T/src/f$failed" "$M/f$failed" || fail "f$failed differs after the write that fit"
for i in $(seq 4 "$n"); do
	cmp -s "$T/src/f$i" "$M/f$i" || fail "f$i differs after rm and a new write"
done
read -r size used <<<"$(df -B1 --output=size,used "$M" | tail -1)"
[ "$used" -lt "$size" ] || fail "df used $used >= size $size"
unmount_statefs "$M"

# ---- a value larger than maxvalue ----
M=$T/mnt2
mount_statefs "$T/store2" "$M" -o maxvalue=1M
echo old >"$M/f"
head -c 1048577 /dev/zero >"$T/big"
head -c 1048576 /dev/zero >"$T/max"
expect_eq "$(wr "$T/big" "$M/f")" "write EFBIG" "1 MiB + 1 into an existing file"
expect_eq "$(cat "$M/f")" "old" "value after EFBIG"
expect_fail_msg "File too large" bash -c "head -c 1048577 /dev/zero >'$M/f'"
expect_eq "$(cat "$M/f")" "old" "value after head -c 1048577"
expect_eq "$(wr "$T/big" "$M/new")" "write EFBIG" "1 MiB + 1 into a new file"
expect_eq "$(stat -c %s "$M/new")" "0" "a new file whose write failed keeps its empty create"
# appending past the limit
expect_eq "$(wr "$T/max" "$M/m")" "ok" "exactly maxvalue"
cmp -s "$T/max" "$M/m" || fail "1 MiB value differs"
expect_fail_msg "File too large" bash -c "echo x >>'$M/m'"
cmp -s "$T/max" "$M/m" || fail "1 MiB value changed by a failed append"
expect_fail_msg "File too large" truncate -s 1048577 "$M/f"
expect_eq "$(cat "$M/f")" "old" "value after truncate past maxvalue"
echo new >"$M/f"
expect_eq "$(cat "$M/f")" "new" "a write after EFBIG on another handle"
finish
