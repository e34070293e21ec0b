#!/usr/bin/env bash
# repl_grid.sh — the 9-node grid (n1 n2 n3 / n4 n5 n6 / n7 n8 n9, each
# linked to its right and lower neighbours): a write on n1 reaches n9
# four hops away; with n5 (the centre) killed it still does, around it;
# n5 started again catches up and all nine digests are equal.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mesh
mesh_up 9 --topology grid --no-mount "$M"

# the edges statefs-mesh gave the grid: n5 has four peers, n1 two, n9 two
peers() { sed -n 's/^\[peer \(.*\)\]$/\1/p' "$M/$1/node.conf" | sort | tr '\n' ' '; }
expect_eq "$(peers n1)" "n2 n4 " "peers of n1"
expect_eq "$(peers n5)" "n2 n4 n6 n8 " "peers of n5"
expect_eq "$(peers n6)" "n3 n5 n9 " "peers of n6"
expect_eq "$(peers n9)" "n6 n8 " "peers of n9"

mesh_ctl "$M" n1 put /grid/a one || die "put on n1"
wait_output 20 one mesh_ctl "$M" n9 get /grid/a ||
	fail "n1's /grid/a did not reach n9"

mesh kill "$M" n5 || die "statefs-mesh kill n5"
[ -f "$M/n5/repl.pid" ] && fail "n5's pid file is left after kill"
mesh_ctl "$M" n1 put /grid/b two || die "put /grid/b on n1"
mesh_ctl "$M" n1 del /grid/a || die "del /grid/a on n1"
for i in $(seq 1 50); do echo "$i"; done | mesh_ctl "$M" n1 put /grid/c || die "put /grid/c"
wait_output 20 two mesh_ctl "$M" n9 get /grid/b ||
	fail "with n5 down, n1's /grid/b did not reach n9"
wait_for 20 bash -c "! '$STATEFSCTL' -s '$M/n9/store' get /grid/a >/dev/null 2>&1" ||
	fail "with n5 down, n1's delete of /grid/a did not reach n9"
expect_eq "$(mesh_ctl "$M" n9 get /grid/c | wc -l)" 50 "lines of /grid/c on n9"
# n5's store saw none of it (its replicator is dead)
expect_eq "$(mesh_ctl "$M" n5 get /grid/a)" one "/grid/a on n5 while it is down"
mesh_ctl "$M" n5 get /grid/b >/dev/null 2>&1 && fail "n5 got /grid/b while its replicator was dead"

mesh start "$M" n5 || die "statefs-mesh start n5"
mesh wait "$M" 30 || fail "the nine digests differ after n5 came back"
for k in $(seq -f 'n%g' 1 9); do
	expect_eq "$(mesh_ctl "$M" "$k" get /grid/b 2>&1)" two "/grid/b on $k"
	mesh_ctl "$M" "$k" get /grid/a >/dev/null 2>&1 && fail "/grid/a is back on $k"
	mesh_ctl "$M" "$k" check >/dev/null || fail "statefsctl check on $k"
done
mesh_logs_clean "$M"
finish
