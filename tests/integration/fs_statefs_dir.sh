#!/usr/bin/env bash
# fs_statefs_dir.sh — /.statefs/stats is readable with the expected
# names; nothing can be written, created or removed there.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mnt
mount_statefs "$T/store" "$M" -o node=alpha
echo v >"$M/f"; cat "$M/f" >/dev/null
s=$(cat "$M/.statefs/stats")
for n in ops_lookup ops_getattr ops_read ops_write ops_create ops_unlink \
	ops_mkdir ops_rmdir ops_rename ops_setattr ops_flock bytes_read \
	bytes_written records store_map_size store_map_used \
	locks_held_exclusive locks_held_shared lock_waiters lock_grants \
	lock_contentions locks_orphaned node node_id; do
	grep -q "^$n " <<<"$s" || fail "stats lacks '$n'"
done
expect_eq "$(awk '$1 == "node" {print $2}' <<<"$s")" "alpha" "node name"
expect_eq "$(awk '$1 == "records" {print $2}' <<<"$s")" "1" "records"
[ "$(awk '$1 == "ops_write" {print $2}' <<<"$s")" -ge 1 ] || fail "ops_write not counted"
expect_eq "$(ls -a "$M" | grep -c '^\.statefs$')" "1" ".statefs listed in the root"
expect_eq "$(ls "$M/.statefs" | tr '\n' ' ')" "node stats " "files of /.statefs"
expect_fail_msg "Operation not permitted" bash -c "echo x > '$M/.statefs/stats'"
expect_fail_msg "Operation not permitted" touch "$M/.statefs/new"
expect_fail_msg "Operation not permitted" mkdir "$M/.statefs/d"
expect_fail_msg "Operation not permitted" rm -f "$M/.statefs/stats"
expect_fail_msg "Operation not permitted" mv "$M/.statefs" "$M/x"
expect_fail_msg "Operation not permitted" mv "$M/f" "$M/.statefs/f"
expect_fail_msg "Operation not permitted" setfattr -n user.a -v 1 "$M/.statefs/stats"
expect_fail_msg "Operation not permitted" chmod 777 "$M/.statefs/stats"
[ -e "$M/f" ] || fail "f lost by a refused rename"
finish
