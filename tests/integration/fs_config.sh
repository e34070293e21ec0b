#!/usr/bin/env bash
# fs_config.sh — `statefs -o config=FILE` (SPEC §8):
#  - alone, it mounts the file's [store] dir at its [mount] mountpoint
#    (both relative to the file), daemonized, with the file's [store]
#    keys, [node] name and [mount] options in effect;
#  - options on the command line override the file's, and STORE_DIR
#    MOUNTPOINT on the command line override dir and mountpoint;
#  - a bad key in the file (or a secret key others may read) fails
#    before mounting: exit 2, one line "statefs: FILE:LINE: key ...",
#    no mount and no driver left behind;
#  - --help documents config=.
. "$(dirname "$0")/../lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ -x "$STATEFSCTL" ] || die "no statefsctl in $BIN"
C=$T/etc
mkdir -p "$C" "$T/mnt" "$T/mnt2"

# the driver daemonizes: find it by its config file to clean up
track_driver() { # mountpoint config
	local p
	p=$(pgrep -f -n "statefs.*config=$2") && track_pid "$p"
	_MOUNTS+=("$1")
}
unmount() {
	fusermount3 -u "$1" || fail "unmount $1"
	wait_for 10 bash -c "! grep -q ' $1 fuse' /proc/self/mounts" || fail "$1 still mounted"
}

"$STATEFSCTL" keygen "$C/n1" >/dev/null || die "keygen"
cat >"$C/n1.conf" <<CONF
; node n1
[store]
dir = ../store
max_value = 1M
default_ttl = 1h
[node]
name = n1
key = n1.key
[mount]
mountpoint = ../mnt
options = nosuid
CONF

# ---- the file alone ----
"$STATEFS" -o config="$C/n1.conf" >"$T/out" 2>&1; rc=$?
track_driver "$T/mnt" "$C/n1.conf"
expect_eq "$rc" 0 "statefs -o config=FILE exit code ($(cat "$T/out"))"
wait_for 10 is_mounted "$T/mnt" || die "config=FILE: $T/mnt not mounted"
expect_eq "$(awk -v m="$T/mnt" '$2 == m {print $1, $3}' /proc/self/mounts)" \
	"$T/store fuse.statefs" "source and type in /proc/mounts"
grep " $T/mnt fuse" /proc/self/mounts | grep -q nosuid || fail "[mount] options nosuid not in effect"
echo hello >"$T/mnt/greeting" || fail "write through the config mount"
expect_eq "$("$STATEFSCTL" -s "$T/store" get /greeting)" "hello" "value in [store] dir"
expect_fail_msg "File too large" bash -c "head -c 1048577 /dev/zero >'$T/mnt/big'"
now=$(date +%s)
exp=$(getfattr --absolute-names --only-values -n user.statefs.expires "$T/mnt/greeting" 2>&1)
exp=${exp%%.*}
[[ $exp =~ ^[0-9]+$ ]] && [ $((exp - now)) -ge 3590 ] && [ $((exp - now)) -le 3610 ] ||
	fail "default_ttl = 1h: user.statefs.expires '$exp', now $now"
expect_eq "$("$STATEFSCTL" -s "$T/store" status | awk '$1 == "node_name" {print $2}')" "n1" "[node] name"
unmount "$T/mnt"

# ---- the command line overrides the file ----
"$STATEFS" -o maxvalue=2M -o config="$C/n1.conf",ttl=0 "$T/store2" "$T/mnt2" >"$T/out" 2>&1; rc=$?
track_driver "$T/mnt2" "$C/n1.conf"
expect_eq "$rc" 0 "config=FILE with STORE_DIR MOUNTPOINT exit code ($(cat "$T/out"))"
if wait_for 10 is_mounted "$T/mnt2"; then
	! is_mounted "$T/mnt" || fail "the file's mountpoint was mounted too"
	head -c 1500000 /dev/zero >"$T/mnt2/big" || fail "maxvalue=2M on the command line did not win"
	echo v >"$T/mnt2/f"
	exp=$(getfattr --absolute-names --only-values -n user.statefs.expires "$T/mnt2/f" 2>&1)
	expect_eq "$exp" "never" "ttl=0 on the command line wins over default_ttl"
	[ -f "$T/store2/store.mdb" ] || fail "STORE_DIR on the command line not used"
	unmount "$T/mnt2"
else
	fail "config=FILE STORE_DIR MOUNTPOINT did not mount"
fi

# ---- a bad key: exit 2, FILE:LINE, nothing mounted ----
# expect_bad_config WANT: statefs -o config=$C/bad.conf fails as it should.
expect_bad_config() {
	local out rc
	out=$("$STATEFS" -o config="$C/bad.conf" 2>&1); rc=$?
	expect_eq "$rc" 2 "exit code of a bad config ($out)"
	expect_eq "$out" "statefs: $1" "message of a bad config"
	! is_mounted "$T/mnt" || fail "mounted with a bad config"
	! pgrep -f "statefs.*config=$C/bad.conf" >/dev/null || fail "a driver is left behind"
	[ ! -e "$T/badstore" ] || fail "a bad config created the store"
}
sed -e 's/^key = .*/key = bad.key/' -e 's|^dir = .*|dir = ../badstore|' "$C/n1.conf" >"$C/bad.conf"
printf 'not a key\n' >"$C/bad.key"; chmod 600 "$C/bad.key"
expect_bad_config "$C/bad.conf:8: key 'key': $C/bad.key: not a key file (40 Z85 characters and a newline)"
printf '%.39s~\n' "$(cat "$C/n1.key")" >"$C/bad.key"
expect_bad_config "$C/bad.conf:8: key 'key': $C/bad.key: character 40 ('~') is not Z85"
cp "$C/n1.key" "$C/bad.key"; chmod 640 "$C/bad.key"
expect_bad_config "$C/bad.conf:8: key 'key': $C/bad.key: a secret key readable by group or others (mode 0640): chmod 600 it"
sed -i 's/^key = .*/key = missing.key/' "$C/bad.conf"
expect_bad_config "$C/bad.conf:8: key 'key': $C/missing.key: No such file or directory"
sed -i 's/^key = .*/sise = 1G/' "$C/bad.conf"
expect_bad_config "$C/bad.conf:8: key 'sise': unknown key in [node]"
sed -i '/^sise = /d; s/^options = .*/options = bogus/' "$C/bad.conf"
expect_bad_config "$C/bad.conf: [mount] options: unknown option 'bogus'"
printf '[node]\nname = n1\n' >"$C/bad.conf"
expect_bad_config "$C/bad.conf: no [store] dir, and none on the command line"
printf '[store]\ndir = /nonexistent\n' >"$C/bad.conf"
expect_bad_config "$C/bad.conf: no [mount] mountpoint, and none on the command line"
out=$("$STATEFS" -o config="$C/none.conf" 2>&1); rc=$?
expect_eq "$rc" 2 "exit code of a missing config"
expect_eq "$out" "statefs: $C/none.conf: No such file or directory" "message of a missing config"

# ---- --help ----
help=$("$STATEFS" --help) || fail "statefs --help exit $?"
[[ $help == *"config=FILE"* ]] || fail "--help does not mention config=FILE"
finish
