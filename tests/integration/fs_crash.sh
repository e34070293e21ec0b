#!/usr/bin/env bash
# fs_crash.sh — kill -9 of the driver while a large write is in progress
# and 20 small writers loop (SPEC §9 "driver killed -9"). fs_helpers.sh
# covers one echo loop; this adds what it does not:
#  - a 5 MiB value being written in 64 KiB pieces when the driver dies:
#    afterwards the file holds its old complete 5 MiB value;
#  - 20 writers, each rewriting its own file with a complete value
#    (100 identical lines naming the writer and the round) and logging
#    the round only after close(2) returned 0: afterwards each file
#    holds a complete value of the last logged round or the one after
#    it (in flight at the kill), never a partial or mixed one;
#  - the next statefs mounts at the same mountpoint (dead mount cleaned)
#    and every other value is intact.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
mount_statefs "$T/store" "$M"

head -c $((5 << 20)) /dev/urandom >"$T/old"
head -c $((5 << 20)) /dev/urandom >"$T/new"
cp "$T/old" "$M/big" || die "cp of the old 5 MiB value"
for i in $(seq 1 30); do echo "keep$i" >"$M/keep$i"; done

# slow writer of the new 5 MiB value: 64 KiB, then 20 ms, and so on;
# it says how far it got in $T/big.progress. At 1 MiB it says "paused"
# and waits, its file still open, until $T/killed exists (the driver is
# dead then): so the kill always lands in the middle of the write, also
# on a loaded machine where the checks below are slow.
perl -MPOSIX -e '
	my ($src, $dst, $prog, $killed) = @ARGV;
	open(my $in, "<:raw", $src) or die; local $/; my $d = <$in>;
	my $fd = POSIX::open($dst, O_WRONLY | O_TRUNC) // exit 2;
	for (my $off = 0; $off < length $d; $off += 65536) {
		defined POSIX::write($fd, substr($d, $off, 65536), 65536) or exit 3;
		my $say = $off + 65536 == (1 << 20) ? "paused" : $off + 65536;
		open(my $p, ">", "$prog.tmp"); print $p $say; close $p;
		rename("$prog.tmp", $prog);
		if ($say eq "paused") {
			for (my $i = 0; $i < 6000 && ! -e $killed; $i++) {
				select(undef, undef, undef, 0.01);
			}
		}
		select(undef, undef, undef, 0.02);
	}
	POSIX::close($fd) // exit 4;
	open(my $p, ">", "$prog.tmp"); print $p "closed"; close $p;
	rename("$prog.tmp", $prog);' "$T/new" "$M/big" "$T/big.progress" "$T/killed" &
bigpid=$!
track_pid $bigpid

# 20 small writers
for k in $(seq 1 20); do
	perl -MPOSIX -e '
		my ($k, $dst, $log) = @ARGV;
		open(my $l, ">>", $log) or die; $l->autoflush(1);
		for (my $i = 1; ; $i++) {
			my $v = "w$k-$i\n" x 100;
			my $fd = POSIX::open($dst, O_WRONLY | O_CREAT | O_TRUNC, 0644) // exit 0;
			defined POSIX::write($fd, $v, length $v) or exit 0;
			defined POSIX::close($fd) or exit 0;
			print $l "$i\n";
		}' "$k" "$M/w$k" "$T/w$k.log" &
	track_pid $!
	wpids+=($!)
done

# kill when the big write is paused 1 MiB in and every writer has closed
# at least 5 values
ready() {
	local k p
	p=$(cat "$T/big.progress" 2>/dev/null) || return 1
	[ "$p" = paused ] || return 1
	for k in $(seq 1 20); do
		[ "$(wc -l <"$T/w$k.log" 2>/dev/null || echo 0)" -ge 5 ] || return 1
	done
}
wait_for 30 ready || die "writers did not get going (big at $(cat "$T/big.progress" 2>/dev/null))"
kill -9 "$STATEFS_PID"
wait "$STATEFS_PID" 2>/dev/null # reaped: it is dead
echo "killed the driver with big at $(cat "$T/big.progress") (1 MiB written)"
touch "$T/killed"
for p in "${wpids[@]}" "$bigpid"; do wait "$p" 2>/dev/null; done
[ "$(cat "$T/big.progress")" != closed ] || fail "the big write finished before the kill"

mount_statefs "$T/store" "$M"
wait_for 10 stat "$M/keep1" >/dev/null || die "no live mount after the restart: $(cat "$T/statefs.log")"
cmp -s "$T/old" "$M/big" || fail "big is not its old complete value after kill -9 (size $(stat -c %s "$M/big"))"
for i in $(seq 1 30); do
	expect_eq "$(cat "$M/keep$i")" "keep$i" "keep$i after kill -9"
done
for k in $(seq 1 20); do
	last=$(tail -n 1 "$T/w$k.log")
	got=$(head -n 1 "$M/w$k")
	r=${got#w$k-}
	if ! [[ $got =~ ^w$k-[0-9]+$ ]] || { [ "$r" != "$last" ] && [ "$r" != $((last + 1)) ]; }; then
		fail "w$k: first line '$got', last round closed before the kill $last"
		continue
	fi
	cmp -s "$M/w$k" <(perl -e 'print "w$ARGV[0]-$ARGV[1]\n" x 100' "$k" "$r") ||
		fail "w$k: value of round $r is not complete (size $(stat -c %s "$M/w$k"))"
done
# the store takes new writes as before
echo after >"$M/after"
expect_eq "$(cat "$M/after")" "after" "a write after the restart"
finish
