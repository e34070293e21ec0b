#!/usr/bin/env bash
# repl_join.sh — a new empty node joins through one peer (statefs-mesh
# add) and gets everything; a node kept down while more than the binlog
# cap (binlog_max = 200) is written elsewhere catches up by snapshot when
# it starts again, with no manual step.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mesh
mesh_up 2 --topology line --no-mount --set store.binlog_max=200 "$M"
# writers open the store with the node's config (ctl_config.sh checks
# that statefsctl honours its [store] keys)
ctl() { local k=$1; shift; "$STATEFSCTL" --config "$M/$k/node.conf" "$@"; }
dump() { # PREFIX COUNT
	local i
	echo "statefs-dump 1"
	for ((i = 1; i <= $2; i++)); do printf 'f 0644 0 0 0 %s/k%05d v%d\n' "$1" "$i" "$i"; done
}

dump /before 500 >"$T/before" && ctl n1 import "$T/before" || die "import /before on n1"
ctl n1 del /before/k00007 || die "del on n1"
mesh wait "$M" 30 || die "n1 and n2 did not converge"

# a new empty node, linked to n2 only
mesh add "$M" --peer n2 || die "statefs-mesh add --peer n2"
grep -q '^\[peer n3\]' "$M/n2/node.conf" || fail "n2's config does not list n3"
expect_eq "$(sed -n 's/^\[peer \(.*\)\]$/\1/p' "$M/n3/node.conf")" n2 "peers of n3"
mesh wait "$M" 30 || fail "the new node n3 did not catch up"
expect_eq "$(ctl n3 ls /before | wc -l)" 499 "keys under /before on n3"
expect_eq "$(ctl n3 get /before/k00500)" v500 "/before/k00500 on n3"
ctl n3 get /before/k00007 >/dev/null 2>&1 && fail "deleted /before/k00007 came to n3"
expect_eq "$(mesh_counter "$M" n3 repl_snapshots_received)" 1 "snapshots received by the new node"

# n3 down while 2,000 keys (ten times the cap) are written on n1
mesh stop "$M" n3 || die "statefs-mesh stop n3"
sent0=$(mesh_counter "$M" n2 repl_snapshots_sent)
dump /while-down 2000 >"$T/while" && ctl n1 import "$T/while" || die "import /while-down on n1"
ctl n1 del /before/k00001 || fail "del on n1 while n3 is down"
nkeys() { ctl "$1" ls "$2" 2>/dev/null | wc -l; }
wait_output 20 2000 nkeys n2 /while-down ||
	fail "n2 did not get /while-down"
expect_eq "$(ctl n3 ls /while-down 2>/dev/null | wc -l)" 0 "keys on n3 while it is down"
mesh start "$M" n3 || die "statefs-mesh start n3"
mesh wait "$M" 30 || fail "n3 did not catch up after its restart"
expect_eq "$(ctl n3 ls /while-down | wc -l)" 2000 "keys under /while-down on n3"
ctl n3 get /before/k00001 >/dev/null 2>&1 && fail "/before/k00001, deleted while n3 was down, is on n3"
# the binlog could not serve it: a snapshot did (repl.status is
# rewritten every heartbeat)
got_snapshot() { [ "$(mesh_counter "$M" n3 repl_snapshots_received)" -ge 1 ]; }
wait_for 5 got_snapshot
# (a snapshot not acknowledged within peer_timeout is sent again: >= 1)
[ "$(mesh_counter "$M" n3 repl_snapshots_received)" -ge 1 ] ||
	fail "n3 received no snapshot after its restart: $(mesh_counter "$M" n3 repl_snapshots_received)"
[ "$(($(mesh_counter "$M" n2 repl_snapshots_sent) - sent0))" -ge 1 ] ||
	fail "n2 sent no snapshot to the restarted n3"
for k in n1 n2 n3; do ctl "$k" check >/dev/null || fail "statefsctl check on $k"; done

# and it follows the binlog again afterwards
ctl n1 put /after yes || fail "put /after"
wait_output 10 yes ctl n3 get /after || fail "/after did not reach n3"
mesh wait "$M" 30 || fail "digests differ at the end"
mesh_logs_clean "$M"
finish
