#!/usr/bin/env bash
# fs_mount.sh — the ways to start a mount (SPEC §1, §8):
#  - mount.fuse3 STORE MNT -t fuse.statefs -o ttl=5,maxvalue=2M with
#    statefs found on PATH, the options in effect; this is what
#    `mount -t fuse.statefs` runs, but mount(8) starts the helper with
#    no PATH at all (/bin/sh then looks in /usr/local/bin, /usr/bin...),
#    so a test that installs nothing cannot use mount -t fuse.statefs;
#  - mount(8) itself: mount -t fuse 'PATH/statefs#STORE' MNT;
#  - an fstab line (the same '#' form), with mount -T FILE MNT;
#  - an unknown option fails, naming it;
#  - mount-helpers/statefs-up with STATEFS_BUILD (no install, no build):
#    mounts, prints the unmount command, a second run says it is
#    already mounted and exits 0;
#  - statefs --help names every -o option.
. "$(dirname "$0")/../lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -e /dev/fuse ] || skip "no /dev/fuse"
command -v mount.fuse3 >/dev/null || skip "no mount.fuse3 (fuse3)"
mkdir -p "$T/bin" "$T/mnt"
ln -s "$STATEFS" "$T/bin/statefs"
export PATH=$T/bin:$PATH
M=$T/mnt

# the driver daemonizes: find it by its mountpoint to clean up
track_driver() {
	local p
	p=$(pgrep -f -n "statefs.* $1( |\$)") && track_pid "$p"
	_MOUNTS+=("$1")
}

# ---- mount.fuse3 -t fuse.statefs ----
mount.fuse3 "$T/store" "$M" -t fuse.statefs -o ttl=5,maxvalue=2M >"$T/mount.log" 2>&1 ||
	die "mount.fuse3 -t fuse.statefs: $(cat "$T/mount.log")"
track_driver "$M"
wait_for 10 is_mounted "$M" || die "mount.fuse3: not mounted"
expect_eq "$(awk -v m="$M" '$2 == m {print $3}' /proc/self/mounts)" "fuse.statefs" "type in /proc/mounts"
now=$(date +%s)
echo v >"$M/f"
exp=$(getfattr --absolute-names --only-values -n user.statefs.expires "$M/f" 2>&1)
exp=${exp%%.*}
[[ $exp =~ ^[0-9]+$ ]] && [ $((exp - now)) -ge 4 ] && [ $((exp - now)) -le 6 ] ||
	fail "ttl=5: user.statefs.expires '$exp', now $now"
expect_fail_msg "File too large" bash -c "head -c $((2 * 1048576 + 1)) /dev/zero >'$M/big'"
head -c $((2 * 1048576)) /dev/zero >"$M/max" || fail "a 2 MiB value with maxvalue=2M"
umount "$M" || fail "umount of the mount.fuse3 mount"
wait_for 10 bash -c "! grep -q ' $M fuse' /proc/self/mounts" || fail "still mounted after umount"

# ---- mount -t fuse ----
mount -t fuse "$T/bin/statefs#$T/store" "$M" -o ttl=5 >"$T/mount.log" 2>&1 ||
	fail "mount -t fuse: $(cat "$T/mount.log")"
track_driver "$M"
if wait_for 10 is_mounted "$M"; then
	expect_eq "$(awk -v m="$M" '$2 == m {print $1, $3}' /proc/self/mounts)" "$T/store fuse.statefs" "source and type in /proc/mounts"
	expect_eq "$(cat "$M/f" 2>&1)" "v" "value through mount -t fuse"
	umount "$M" || fail "umount of the mount -t fuse mount"
	wait_for 10 bash -c "! grep -q ' $M fuse' /proc/self/mounts" || fail "still mounted after umount"
else
	fail "mount -t fuse did not come up"
fi

# ---- fstab ----
printf '%s#%s %s fuse ttl=60,maxvalue=1M,noauto,_netdev 0 0\n' "$T/bin/statefs" "$T/store" "$M" >"$T/fstab"
mount -T "$T/fstab" "$M" >"$T/mount.log" 2>&1 || fail "mount -T fstab: $(cat "$T/mount.log")"
track_driver "$M"
if wait_for 10 is_mounted "$M"; then
	expect_eq "$(cat "$M/f" 2>&1)" "v" "value through the fstab mount"
	expect_fail_msg "File too large" bash -c "head -c 1048577 /dev/zero >'$M/big'"
	umount "$M" || fail "umount of the fstab mount"
	wait_for 10 bash -c "! grep -q ' $M fuse' /proc/self/mounts" || fail "fstab mount still there"
else
	fail "fstab mount did not come up"
fi

# ---- unknown option ----
out=$(mount.fuse3 "$T/store" "$M" -t fuse.statefs -o bogus=1 2>&1); rc=$?
[ $rc -ne 0 ] || fail "mount -o bogus=1 succeeded"
[[ $out == *bogus* ]] || fail "mount -o bogus=1: message '$out' does not name bogus"
! is_mounted "$M" || fail "mounted with -o bogus=1"

# ---- statefs-up ----
U=$T/up
out=$(STATEFS_BUILD=$BIN STATEFS_STORE=$T/upstore "$ROOT/mount-helpers/statefs-up" "$U" 2>&1); rc=$?
track_driver "$U"
expect_eq "$rc" "0" "statefs-up exit code ($out)"
is_mounted "$U" || fail "statefs-up did not mount $U"
[[ $out == *"unmount: fusermount3 -u $U"* ]] || fail "statefs-up output has no unmount command: $out"
echo hello >"$U/greeting" && expect_eq "$(cat "$U/greeting")" "hello" "value in the statefs-up mount"
out=$(STATEFS_BUILD=$BIN STATEFS_STORE=$T/upstore "$ROOT/mount-helpers/statefs-up" "$U" 2>&1); rc=$?
expect_eq "$rc" "0" "second statefs-up exit code"
expect_eq "$out" "statefs-up: $U is already mounted" "second statefs-up message"
fusermount3 -u "$U" || fail "unmount of the statefs-up mount"
wait_for 10 bash -c "! grep -q ' $U fuse' /proc/self/mounts" || fail "statefs-up mount still there"

# ---- --help ----
help=$("$STATEFS" --help); rc=$?
expect_eq "$rc" "0" "statefs --help exit code"
for o in size= maxvalue= sync= ttl= node= allow_other ro; do
	[[ $help == *"$o"* ]] || fail "--help does not mention $o"
done
finish
