#!/usr/bin/env bash
# fs_atomic.sh — a reader racing a writer never sees a torn or empty
# value: 1,000 rounds of bash `echo $i > f` (O_TRUNC, flush before the
# write) against a reader loop; and 2 writers: the last close wins.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
mount_statefs "$T/store" "$M"

echo 0 >"$M/r"
( for i in $(seq 1 1000); do echo "value-$i-$(printf '%050d' $i)" >"$M/r"; done ) &
w=$!
bad=0 n=0
while kill -0 $w 2>/dev/null || [ $n -lt 1000 ]; do
	v=$(cat "$M/r")
	n=$((n + 1))
	[ "$v" = 0 ] && continue
	[[ $v =~ ^value-([0-9]+)-0*([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] ||
		{ bad=$((bad + 1)); echo "torn or empty: '$v'" >&2; }
	[ $n -lt 5000 ] || break
done
wait $w
expect_eq "$bad" "0" "torn/empty reads in $n reads"
expect_eq "$(cat "$M/r")" "value-1000-$(printf '%050d' 1000)" "final value"

# A value is invisible until close (perl holds one descriptor; bash
# redirections would dup and close, and every close publishes).
echo before >"$M/h"
got=$(perl -e 'open(my $f, ">", $ARGV[0]) or die; syswrite($f, "during\n");
	open(my $r, "<", $ARGV[0]) or die; my $v = <$r>; close $r; print $v;
	close $f or die' "$M/h")
expect_eq "$got" "before" "value while the writer holds it open"
expect_eq "$(cat "$M/h")" "during" "value after close"

# Two writers: the last to close wins.
perl -e 'open(my $a, ">", $ARGV[0]) or die; open(my $b, ">", $ARGV[0]) or die;
	syswrite($a, "first\n"); syswrite($b, "second\n");
	close $b; close $a' "$M/w"
expect_eq "$(cat "$M/w")" "first" "last closer wins"
finish
