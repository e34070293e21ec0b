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
expect_eq "$(ls "$M/.statefs" | tr '\n' ' ')" "node peers stats " "files of /.statefs"
# No replicator ran on this store: peers says so and nothing else.
expect_eq "$(cat "$M/.statefs/peers")" "replicator: not running" "peers without a replicator"
expect_eq "$(awk '$1 == "repl_running" {print $2}' <<<"$s")" "0" "repl_running without a replicator"
grep -q '^repl_in ' <<<"$s" && fail "stats shows repl_ counters without a replicator"
# A repl.status left by a dead replicator is not believed.
printf 'pid 999999999\nnode x 01\nupdated_ms %s\nrepl_in 5\npeer b connected=1 last_contact_ms=1 behind_out=0 behind_in=0 in_per_s=0 out_per_s=0 address=-\n' \
	"$(date +%s%3N)" >"$T/store/repl.status"
expect_eq "$(cat "$M/.statefs/peers")" "replicator: not running" "peers of a dead replicator"
# One whose pid lives (ours) and that is fresh is.
printf 'pid %s\nnode x 01\nupdated_ms %s\nrepl_in 5\npeer b connected=1 last_contact_ms=1 behind_out=0 behind_in=0 in_per_s=0 out_per_s=0 address=-\nrefused_key K address=1.2.3.4 count=2\n' \
	"$$" "$(date +%s%3N)" >"$T/store/repl.status"
expect_eq "$(cat "$M/.statefs/peers")" "replicator: running pid=$$ node=x 01
peer b connected=1 last_contact_ms=1 behind_out=0 behind_in=0 in_per_s=0 out_per_s=0 address=-
refused_key K address=1.2.3.4 count=2" "peers of a live replicator"
s=$(cat "$M/.statefs/stats")
expect_eq "$(awk '$1 == "repl_in" {print $2}' <<<"$s")" "5" "repl_in in stats"
expect_eq "$(awk '$1 == "repl_running" {print $2}' <<<"$s")" "1" "repl_running"
# ... until it is 11 s old.
printf 'pid %s\nupdated_ms %s\nrepl_in 5\n' "$$" "$(($(date +%s%3N) - 11000))" >"$T/store/repl.status"
expect_eq "$(cat "$M/.statefs/peers")" "replicator: not running" "peers of a stale repl.status"
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
