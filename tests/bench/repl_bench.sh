#!/usr/bin/env bash
# tests/bench/repl_bench.sh — the replicator's figures (SPEC §10), printed
# as `name value unit` lines like every benchmark here (see
# tests/bench/README.md, "Replication"). tests/bench/run runs it as part
# `repl`; it also runs alone:
#
#   tests/bench/repl_bench.sh [PARTS]     PARTS: converge lag curve etcd
#   BUILD=build-dev REPL_REPS=3 LAG_SECONDS=30 tests/bench/repl_bench.sh
#
# converge  106,178 CSV rows imported on n1 (statefsctl import); seconds
#           from the import's start until every node holds n1's data
#           (repl_wait: watermarks polled every 20 ms, digests confirm),
#           on 3 nodes in a line (n1-n2-n3) and on the 9-node grid
#           (A-B-C / D-E-F / G-H-I, each node dialling its right and
#           lower neighbour); the same import on one store without a
#           replicator as the reference; binlog_max 300000 so no
#           snapshot is needed, and once more with the default cap
#           (100,000), counting the snapshots sent.
# lag       3 nodes in a line, each with a mount: repl_lag writes through
#           n1's mount at 1,000 writes/s for LAG_SECONDS and reads back
#           through n3's mount (two hops); p50, p99, max.
# curve     the 3-node import with CURVE keys against --insecure, same run.
# etcd      Debian's etcd as a 3-member cluster on loopback, the same rows
#           put by one keep-alive HTTP client through the gRPC gateway
#           (/v3/kv/txn, 128 puts per txn); seconds until all 3 members
#           have the last revision. Skipped with a line if not installed.
#
# Every figure is the median of REPL_REPS runs (etcd: ETCD_REPS), runs of
# the compared configurations interleaved so load changes hit them alike.
# Everything lives in one directory under /dev/shm; nodes listen on
# 127.0.0.1 only; an EXIT trap stops every process this script started
# (by pid) and removes the directory. Unless CURVE is the point
# (`curve`), meshes run insecure = true, as statefs-mesh does on one host.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
. "$ROOT/tests/bench/lib.sh"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
REPL_REPS=${REPL_REPS:-3}
ETCD_REPS=${ETCD_REPS:-$REPL_REPS}
LAG_SECONDS=${LAG_SECONDS:-30}
BINLOG_BIG=${BINLOG_BIG:-300000}
PARTS=${*:-converge lag curve etcd}

B=$BUILD/tests/bench
REPL=$BUILD/repl/statefs-repl
STATEFS=$BUILD/fs/statefs
CTL=$BUILD/ctl/statefsctl

[ -d "$BUILD" ] || { echo "repl_bench.sh: no build directory $BUILD" >&2; exit 2; }
[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] ||
	{ echo "repl_bench.sh: /dev/shm is not a tmpfs" >&2; exit 2; }

TMP=$(mktemp -d /dev/shm/statefs-repl-bench.XXXXXX)
OUT=$TMP/figures
: >"$OUT"
# Processes and mounts we started, in files: most are started inside
# pipelines (subshells), and the trap must still find them.
PIDS=$TMP/pids MOUNTS=$TMP/mounts
: >"$PIDS"
: >"$MOUNTS"
# alive PID: running, not a zombie waiting for its reap
reaped() { sed -i "/^$1\$/d" "$PIDS"; } # never signal a pid after its reap
# A port range of our own: 40 ports from a random base.
PORT0=$((10000 + (RANDOM % 1000) * 20)) # below the ephemeral ports

cleanup() {
	local p m
	while read -r m; do
		grep -q " $m fuse" /proc/self/mounts || continue
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null
	done <"$MOUNTS"
	while read -r p; do kill "$p" 2>/dev/null; done <"$PIDS"
	while read -r p; do
		wait_for 5 eval "! alive $p" || kill -9 "$p" 2>/dev/null
	done <"$PIDS"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

usec() { local t=${1/[.,]/}; echo $((10#$t)); }
secs() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); } # us -> s

# ---- meshes ----
# A mesh lives in directory D: D/NAME.conf, D/NAME/store, D/NAME.log,
# D/pids. Topologies are lists of "A B" edges: A dials B.
topo_nodes() {
	case $1 in
	line3) echo n1 n2 n3 ;;
	grid9) echo A B C D E F G H I ;;
	esac
}
topo_edges() {
	case $1 in
	line3) printf '%s\n' "n1 n2" "n2 n3" ;;
	grid9) printf '%s\n' "A B" "B C" "D E" "E F" "G H" "H I" \
		"A D" "B E" "C F" "D G" "E H" "F I" ;;
	esac
}

KEYS=$TMP/keys
keys_for() { # make a CURVE key pair per node name, once
	local n
	mkdir -p "$KEYS"
	for n in "$@"; do
		[ -f "$KEYS/$n.key" ] || "$CTL" keygen "$KEYS/$n" >/dev/null ||
			{ bad "statefsctl keygen"; return 1; }
	done
}

# mesh_up D TOPO SECURITY BINLOG_MAX [mount]: write the configs, start
# one statefs-repl per node (and a mount per node with `mount`), wait
# until every node reports all its peers connected.
mesh_up() {
	local d=$1 topo=$2 sec=$3 blmax=$4 mnt=${5:-} nodes n i=0 a b port
	nodes=($(topo_nodes "$topo"))
	mkdir -p "$d"
	[ "$sec" = curve ] && { keys_for "${nodes[@]}" || return 1; }
	declare -A PORT
	for n in "${nodes[@]}"; do PORT[$n]=$((PORT0 + i)); i=$((i + 1)); mkdir -p "$d/$n"; done
	for n in "${nodes[@]}"; do
		{
			echo "[store]"
			echo "dir = $d/$n/store"
			[ "$blmax" = default ] || echo "binlog_max = $blmax"
			echo "[node]"
			echo "name = $n"
			echo "listen = tcp://127.0.0.1:${PORT[$n]}"
			if [ "$sec" = curve ]; then
				echo "key = $KEYS/$n.key"
			else
				echo "insecure = true"
			fi
			while read -r a b; do
				if [ "$a" = "$n" ]; then
					echo "[peer $b]"
					echo "address = tcp://127.0.0.1:${PORT[$b]}"
					[ "$sec" = curve ] && echo "public_key_file = $KEYS/$b.pub"
				elif [ "$b" = "$n" ]; then
					echo "[peer $a]"
					[ "$sec" = curve ] && echo "public_key_file = $KEYS/$a.pub"
				fi
			done < <(topo_edges "$topo")
		} >"$d/$n.conf"
	done
	: >"$d/pids"
	for n in "${nodes[@]}"; do
		"$REPL" --config "$d/$n.conf" >>"$d/$n.log" 2>&1 &
		started $!
		echo "$n $!" >>"$d/pids"
		if [ "$mnt" = mount ]; then
			mkdir -p "$d/$n/mnt"
			"$STATEFS" -f -o "config=$d/$n.conf" "$d/$n/store" "$d/$n/mnt" \
				>>"$d/$n.mount.log" 2>&1 &
			started $!
			echo "$d/$n/mnt" >>"$MOUNTS"
			echo "$n.mount $!" >>"$d/pids"
		fi
	done
	for n in "${nodes[@]}"; do
		wait_for 20 all_connected "$d" "$n" ||
			{ bad "mesh $topo: $n did not connect to all its peers"; tail -3 "$d/$n.log" >&2; return 1; }
		if [ "$mnt" = mount ]; then
			wait_for 10 grep -q " $d/$n/mnt fuse" /proc/self/mounts ||
				{ bad "mount of $n"; return 1; }
		fi
	done
}

all_connected() { # D NAME: its repl.status lists peers, all connected=1
	local f=$1/$2/store/repl.status
	[ -s "$f" ] && grep -q '^peer ' "$f" && ! grep '^peer ' "$f" | grep -q 'connected=0'
}

mesh_cpu() { # D: CPU seconds (user + system) of its replicators so far
	local n p t=0 hz
	hz=$(getconf CLK_TCK)
	while read -r n p; do
		[[ $n == *.mount ]] && continue
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done <"$1/pids"
	echo "$((t / hz)).$(printf %02d $((t % hz * 100 / hz)))"
}

mesh_down() { # D: unmount, SIGTERM every process of the mesh, wait
	local d=$1 n p m
	for m in "$d"/*/mnt; do
		[ -d "$m" ] && grep -q " $m fuse" /proc/self/mounts && fusermount3 -u "$m" 2>/dev/null
	done
	while read -r n p; do kill "$p" 2>/dev/null; done <"$d/pids"
	while read -r n p; do
		wait_for 5 eval "! alive $p" || { note "$n did not stop on SIGTERM"; kill -9 "$p"; }
		wait "$p" 2>/dev/null
		reaped "$p"
	done <"$d/pids"
}

# Sum of one counter over the nodes' repl.status files (written every
# heartbeat: wait for one more write first).
status_sum() { # D KEY
	local f s=0 v
	sleep 1.2
	for f in "$1"/*/store/repl.status; do
		v=$(awk -v k="$2" '$1 == k { print $2 }' "$f")
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

# converge_once LABEL TOPO SECURITY BINLOG_MAX: one import to
# convergence, prints the figures of this repetition.
converge_once() {
	local label=$1 topo=$2 sec=$3 blmax=$4 d=$TMP/mesh-$1 nodes n t0 t1 tc stores=()
	nodes=($(topo_nodes "$topo"))
	mesh_up "$d" "$topo" "$sec" "$blmax" || { mesh_down "$d"; rm -rf "$d"; return 1; }
	for n in "${nodes[@]:1}"; do stores+=("$d/$n/store"); done
	t0=$EPOCHREALTIME
	"$CTL" --config "$d/${nodes[0]}.conf" import --csv --key-column 1 "$CSV" \
		>"$d/import.log" 2>&1 || { bad "import on $label"; cat "$d/import.log" >&2; }
	t1=$EPOCHREALTIME
	if "$B/repl_wait" -i 20 -t 300 "$d/${nodes[0]}/store" "${stores[@]}" >"$d/wait.out"; then
		tc=$(awk '$1 == "converged" { print $2 }' "$d/wait.out")
		local us=$((tc - $(usec $t0))) ius=$(($(usec $t1) - $(usec $t0)))
		echo "repl_${label}_import $(secs $ius) s"
		echo "repl_${label}_converged $(secs $us) s"
		echo "repl_${label}_rate $((ROWS * 1000000 / us)) rows/s"
		[ "$blmax" = default ] &&
			echo "repl_${label}_snapshots_sent $(status_sum "$d" repl_snapshots_sent) snapshots"
		# the replicators' CPU over the whole run (start to convergence),
		# and how often a link timed out or a stream was sent again
		echo "repl_${label}_repl_cpu $(mesh_cpu "$d") s"
		echo "repl_${label}_peer_downs $(cat "$d"/*.log | grep -c 'down (no word') events"
		echo "repl_${label}_resends $(cat "$d"/*.log | grep -c 'sending again') events"
	else
		bad "$label: no convergence"
	fi
	mesh_down "$d"
	rm -rf "$d"
}

import_ref_once() { # the same import on one store, no replicator
	local s=$TMP/ref-store t0 t1 us
	t0=$EPOCHREALTIME
	"$CTL" -s "$s" import --csv --key-column 1 "$CSV" >"$TMP/ref.log" 2>&1 ||
		{ bad "reference import"; cat "$TMP/ref.log" >&2; return 1; }
	t1=$EPOCHREALTIME
	us=$(($(usec $t1) - $(usec $t0)))
	echo "repl_ref_import $(secs $us) s"
	echo "repl_ref_import_rate $((ROWS * 1000000 / us)) rows/s"
	rm -rf "$s"
}

CSV=$TMP/pricepaid.csv
ROWS=0
if has_part converge || has_part curve || has_part etcd; then
	if [ ! -x "$B/gen_pricepaid" ] || [ ! -x "$B/repl_wait" ] || [ ! -x "$REPL" ] || [ ! -x "$CTL" ]; then
		skip "repl: gen_pricepaid, repl_wait, statefs-repl or statefsctl not built in $BUILD"
		PARTS=${PARTS//converge/}; PARTS=${PARTS//curve/}
	else
		"$B/gen_pricepaid" >"$CSV" || bad "gen_pricepaid"
		ROWS=$(wc -l <"$CSV")
	fi
fi

# ---- import to convergence ----
if has_part converge; then
	note "import to convergence: $REPL_REPS reps of $ROWS rows; 3 nodes, 9-node grid, reference"
	for ((r = 0; r < REPL_REPS; r++)); do
		import_ref_once
		converge_once line3 line3 insecure "$BINLOG_BIG"
		converge_once grid9 grid9 insecure "$BINLOG_BIG"
	done | medians | emit
	# one run with the default binlog cap: the import outruns the
	# replicator and slow peers get snapshots
	converge_once line3_defcap line3 insecure default | medians | emit
	converge_once grid9_defcap grid9 insecure default | medians | emit
	ratio repl_line3_rate_vs_ref repl_line3_rate repl_ref_import_rate | emit
	ratio repl_grid9_rate_vs_ref repl_grid9_rate repl_ref_import_rate | emit
fi

# ---- the cost of CURVE ----
if has_part curve; then
	note "CURVE against insecure, 3 nodes in a line: $REPL_REPS reps"
	for ((r = 0; r < REPL_REPS; r++)); do
		converge_once line3_curve line3 curve "$BINLOG_BIG"
		converge_once line3_insecure line3 insecure "$BINLOG_BIG"
	done | medians | emit
	ratio repl_line3_curve_vs_insecure repl_line3_curve_rate repl_line3_insecure_rate | emit
fi

# ---- replication lag, two hops, through the mounts ----
if has_part lag; then
	if [ ! -x "$B/repl_lag" ] || [ ! -x "$STATEFS" ]; then
		skip "lag: repl_lag or statefs not built in $BUILD"
	else
		note "lag: 1000 writes/s for $LAG_SECONDS s through n1's mount, read through n3's"
		d=$TMP/mesh-lag
		if mesh_up "$d" line3 insecure "$BINLOG_BIG" mount; then
			timeout $((LAG_SECONDS + 60)) "$B/repl_lag" -r 1000 -s "$LAG_SECONDS" \
				-n repl_lag_line3 "$d/n1/mnt/lag" "$d/n3/mnt/lag" | emit
			[ "${PIPESTATUS[0]}" -eq 0 ] || bad "repl_lag"
		fi
		mesh_down "$d"
		rm -rf "$d"
	fi
fi

# ---- etcd ----
etcd_once() { # prints etcd_* figures of one run
	local d=$TMP/etcd i cluster="" pids=() urls=() out
	mkdir -p "$d"
	for i in 1 2 3; do
		cluster+="${cluster:+,}e$i=http://127.0.0.1:$((PORT0 + 20 + i))"
	done
	for i in 1 2 3; do
		etcd --name "e$i" --data-dir "$d/e$i" \
			--listen-client-urls "http://127.0.0.1:$((PORT0 + 30 + i))" \
			--advertise-client-urls "http://127.0.0.1:$((PORT0 + 30 + i))" \
			--listen-peer-urls "http://127.0.0.1:$((PORT0 + 20 + i))" \
			--initial-advertise-peer-urls "http://127.0.0.1:$((PORT0 + 20 + i))" \
			--initial-cluster "$cluster" --initial-cluster-state new \
			--initial-cluster-token "bench$$" --quota-backend-bytes $((4 << 30)) \
			--log-level error >>"$d/e$i.log" 2>&1 &
		pids+=($!)
		started $!
		urls+=("127.0.0.1:$((PORT0 + 30 + i))")
	done
	if python3 "$ROOT/tests/bench/etcd_import.py" "$CSV" "${urls[@]}" >"$d/out"; then
		cat "$d/out"
	else
		bad "etcd import"
		tail -3 "$d"/e*.log >&2
	fi
	for i in "${pids[@]}"; do kill "$i" 2>/dev/null; done
	for i in "${pids[@]}"; do
		wait_for 5 eval "! alive $i" || kill -9 "$i" 2>/dev/null
		wait "$i" 2>/dev/null
		reaped "$i"
	done
	rm -rf "$d"
}
if has_part etcd; then
	if ! command -v etcd >/dev/null; then
		skip "etcd: not installed (apt-get install etcd-server etcd-client)"
	elif [ "$ROWS" -eq 0 ]; then
		skip "etcd: no CSV"
	else
		note "etcd: 3 members on loopback, $ETCD_REPS reps of $ROWS rows, 128 puts per txn"
		for ((r = 0; r < ETCD_REPS; r++)); do etcd_once; done | medians | emit
		ratio repl_line3_vs_etcd repl_line3_rate etcd_import_rate | emit
	fi
fi

if [ -s "$TMP/failed" ]; then
	echo "repl_bench.sh: $(wc -l <"$TMP/failed") part(s) failed" >&2
	exit 1
fi
