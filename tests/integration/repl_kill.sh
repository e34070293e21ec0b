#!/usr/bin/env bash
# repl_kill.sh — kill -9 of a replicator in the middle of a large
# stream loses nothing and applies nothing twice. Three nodes in a line
# (n1-n2-n3); n1 imports thousands of keys while cut off from n2, the
# cut is lifted and, while n2 is still behind, the sender's replicator
# (n1) is killed with SIGKILL, then started again. The same with the
# receiver's (n2). Afterwards every key is on n3, the digests are equal,
# statefsctl check passes everywhere, and every node's binlog grew by
# exactly the number of changes imported: a change applied twice would
# have added an entry.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mesh
K=${REPL_KILL_KEYS:-30000}
mesh_up 3 --topology line --no-mount "$M"

records() { mesh_ctl "$M" "$1" status | awk '$1 == "records" {print $2}'; }
binlog_last() { mesh_ctl "$M" "$1" status | awk '$1 == "binlog_last" {print $2}'; }

# kill_mid_stream VICTIM PREFIX
kill_mid_stream() {
	local victim=$1 prefix=$2 base2 got i before=() k
	for k in n1 n2 n3; do before+=("$(binlog_last "$k")"); done
	base2=$(records n2)
	applied3=$(mesh_counter "$M" n3 repl_applied)
	mesh partition "$M" n1 n2,n3 || die "partition n1 from n2"
	{
		echo "statefs-dump 1"
		for ((i = 1; i <= K; i++)); do
			printf 'f 0644 0 0 0 %s/k%06d %0400d\n' "$prefix" "$i" "$i"
		done
	} >"$T/dump"
	mesh_ctl "$M" n1 import "$T/dump" || die "import on n1"
	expect_eq "$(records n1)" "$((base2 + K + 1))" "records on n1 after the import"
	# lift the cut by hand (statefs-mesh heal would wait for the links,
	# and by then the stream may be over), kill once n2 has a part
	rm -f "$M"/n*/store/repl.block
	got=$base2
	for ((i = 0; i < 3000; i++)); do
		got=$(records n2)
		[ "$got" -gt $((base2 + 200)) ] && break
		sleep 0.005
	done
	mesh kill "$M" "$victim" || die "statefs-mesh kill $victim"
	got=$(records n2)
	echo "$victim killed with n2 at $((got - base2)) of $((K + 1)) changes"
	[ "$got" -gt "$base2" ] || fail "$victim: the stream had not started when it was killed"
	mesh start "$M" "$victim" || die "statefs-mesh start $victim"
	# the stream may outrun our polling: then the round proves less;
	# the caller runs it again, longer
	[ "$got" -lt $((base2 + K + 1)) ] || OVER=1
	mesh wait "$M" 60 || fail "$victim: digests differ after its restart"
	expect_eq "$(mesh_ctl "$M" n3 ls "$prefix" | wc -l)" "$K" "$victim: keys under $prefix on n3"
	expect_eq "$(mesh_ctl "$M" n3 get "$prefix/k$(printf %06d "$K")")" "$(printf %0400d "$K")" \
		"$victim: the last key's value on n3"
	i=0
	for k in n1 n2 n3; do
		expect_eq "$(($(binlog_last "$k") - before[i]))" "$((K + 1))" \
			"$victim: binlog entries added on $k (one per change)"
		mesh_ctl "$M" "$k" check >/dev/null || fail "$victim: statefsctl check on $k"
		i=$((i + 1))
	done
	# n3's replicator ran throughout: it applied each change once (its
	# repl.status is rewritten every heartbeat)
	all_applied() { [ "$(($(mesh_counter "$M" n3 repl_applied) - applied3))" -ge "$((K + 1))" ]; }
	wait_for 5 all_applied
	expect_eq "$(($(mesh_counter "$M" n3 repl_applied) - applied3))" "$((K + 1))" \
		"$victim: repl_applied on n3"
}

# kill_until_mid VICTIM PREFIX: rounds of growing size until the kill
# lands in the middle of a stream
kill_until_mid() {
	local round
	K=${REPL_KILL_KEYS:-30000}
	for round in 1 2 3; do
		OVER=0
		kill_mid_stream "$1" "$2$round"
		[ $OVER -eq 1 ] || return 0
		echo "$1: the stream was over before the kill: again with more keys"
		K=$((K * 2))
	done
	fail "$1: the stream was over before the kill in every round (raise REPL_KILL_KEYS)"
}
kill_until_mid n1 /sender
kill_until_mid n2 /receiver
mesh_logs_clean "$M"
finish
