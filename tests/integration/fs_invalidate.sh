#!/usr/bin/env bash
# fs_invalidate.sh — changes made outside the mount (statefsctl) are seen
# through it at once although the kernel caches; inotifywait on the
# mount sees a delete made by statefsctl del; poll(2) reports a change.
. "$(dirname "$0")/../lib.sh"
[ -x "$STATEFSCTL" ] || skip "statefsctl not built ($STATEFSCTL)"
M=$T/mnt
mount_statefs "$T/store" "$M"
echo one >"$M/k"
expect_eq "$(cat "$M/k")" "one" "first read (now cached)"
expect_eq "$(cat "$M/k")" "one" "second read (page cache)"
"$STATEFSCTL" -s "$T/store" put /k two || die "statefsctl put failed"
wait_for 2 test "$(cat "$M/k")" = two || fail "statefsctl put not visible: '$(cat "$M/k")'"
"$STATEFSCTL" -s "$T/store" put /new three || die "statefsctl put failed"
wait_for 2 test "$(cat "$M/new" 2>/dev/null)" = three || fail "new key not visible"

# inotify on the mount sees a delete made outside. The kernel (6.x)
# turns fuse_lowlevel_notify_delete into DELETE_SELF on the file's
# watch; a watch on the directory gets no IN_DELETE from it.
ls -l "$M" >/dev/null   # the kernel knows the entries
inotifywait -e delete_self --format '%e' "$M/k" >"$T/ino" 2>"$T/ino.err" &
iw=$!
track_pid $iw
wait_for 5 grep -q 'Watches established' "$T/ino.err" || fail "inotifywait did not start"

"$STATEFSCTL" -s "$T/store" del /k || die "statefsctl del failed"
wait_for 5 test -s "$T/ino" || fail "inotifywait saw no delete"
expect_eq "$(head -1 "$T/ino")" "DELETE_SELF" "inotify event"
[ ! -e "$M/k" ] || fail "k still visible after del"

# poll(2): a change made outside wakes a poller of the open file
perl -e 'use IO::Poll qw(POLLIN POLLPRI);
	open(my $f, "<", $ARGV[0]) or die; my $p = IO::Poll->new;
	$p->mask($f => POLLIN | POLLPRI);
	$| = 1; print "first ", $p->poll(0), "\n";
	my $n = $p->poll(5); print "after ", ($n > 0 ? "ready" : "timeout"), "\n"' \
	"$M/new" >"$T/poll" &
pp=$!
track_pid $pp
wait_for 5 grep -q '^first' "$T/poll" || fail "poller did not start"
"$STATEFSCTL" -s "$T/store" put /new four
wait $pp
expect_eq "$(tr '\n' ' ' <"$T/poll")" "first 0 after ready " "poll"
finish
