#!/usr/bin/env bash
# fs_ttl.sh — user.statefs.ttl on a file and on a directory, the ttl=
# mount option, renewal by write, expiry at once for stat, cat and ls.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
mount_statefs "$T/store" "$M"
echo v >"$M/f"
stat "$M/f" >/dev/null  # cached by the kernel before the TTL is set
setfattr -n user.statefs.ttl -v 2 "$M/f"
# one grammar and one limit with statefsctl: past 3660 days, EINVAL
setfattr -n user.statefs.ttl -v 3661d "$M/f" 2>"$T/err" && fail "ttl 3661d accepted"
grep -q 'Invalid argument' "$T/err" || fail "ttl 3661d: $(cat "$T/err")"
setfattr -n user.statefs.ttl -v 1e13 "$M/f" 2>/dev/null && fail "ttl 1e13 s accepted"
expect_eq "$(getfattr --absolute-names --only-values -n user.statefs.ttl "$M/f")" "2" "ttl xattr"
exp=$(getfattr --absolute-names --only-values -n user.statefs.expires "$M/f")
[[ $exp =~ ^[0-9]+\.[0-9]{3}$ ]] || fail "expires format: '$exp'"
now=$(date +%s)
[ "${exp%.*}" -ge "$now" ] && [ "${exp%.*}" -le $((now + 3)) ] || fail "expires $exp not within 3 s of $now"
wait_for 5 bash -c "! stat '$M/f' >/dev/null 2>&1" || fail "f still there after its TTL"
expect_fail_msg "No such file" cat "$M/f"
expect_eq "$(ls "$M")" "" "ls after expiry"

# renewal by writes keeps it
echo 1 >"$M/g"
setfattr -n user.statefs.ttl -v 2 "$M/g"
for i in 1 2 3 4 5 6; do sleep 0.5; echo $i >"$M/g"; done
expect_eq "$(cat "$M/g")" "6" "renewed by writes (3 s > TTL)"
wait_for 5 bash -c "! test -e '$M/g'" || fail "g did not expire after the writes stopped"

# directory default
mkdir "$M/d"
setfattr -n user.statefs.ttl -v 1s "$M/d"
echo x >"$M/d/x"
expect_eq "$(getfattr --absolute-names --only-values -n user.statefs.ttl "$M/d/x")" "1" "ttl inherited from the directory"
wait_for 5 bash -c "! test -e '$M/d/x'" || fail "d/x did not expire"
[ -d "$M/d" ] || fail "the directory itself must not expire"

# mount option
fusermount3 -u "$M"
wait_for 10 bash -c "! kill -0 $STATEFS_PID" || die "statefs did not exit"
mount_statefs "$T/store2" "$M" -o ttl=1s
echo y >"$M/y"
expect_eq "$(getfattr --absolute-names --only-values -n user.statefs.ttl "$M/y")" "1" "ttl= mount option"
wait_for 5 bash -c "! test -e '$M/y'" || fail "y did not expire under ttl=1s"
finish
