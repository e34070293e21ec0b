#!/usr/bin/env bash
# tests/bench/lock_mesh_bench.sh — the mesh-wide lock figures (issue 9,
# SPEC §6), printed as `name value unit` lines like every benchmark here
# (see tests/bench/README.md, "Mesh-wide locks"). tests/bench/run runs it
# as part `lockmesh`; it also runs alone:
#
#   tests/bench/lock_mesh_bench.sh [PARTS]   PARTS: cycles failover scale etcd redis
#   BUILD=build-dev LOCK_MESH_REPS=3 CYCLE_SECONDS=3 tests/bench/lock_mesh_bench.sh
#
# The mesh: statefs-mesh up 4 (n1..n3 voters, n4 a standby), stores and
# mounts under one directory on /dev/shm, insecure (one host), lease 5 s.
#
# cycles    lock_cycles (tests/bench/lock_cycles.c) through a mount: flock
#           LOCK_EX + LOCK_UN cycles for CYCLE_SECONDS; on the leader's
#           host, on a voter that follows, and on n4 (standby); 1 locker,
#           8 lockers on files of their own (unc1, unc8), 8 lockers on
#           one file (con8); and one locker on each of the 4 hosts on
#           one file (hosts4: the sum of cycles, the worst host's p50 and
#           p99). The same
#           loads on a tmpfs directory (the floor). Figures: cycles/s,
#           p50 and p99 of the grant (the flock(LOCK_EX) call), ms.
# failover  one locker on a following voter and one on n4 cycle; the
#           script signals them, then (microseconds later) kill -9's the
#           leader's statefs-repl; each reports the time from the signal
#           to its first grant asked for after it (_failover_ms) and the
#           longest time without a grant in its 6 s (_max_gap_ms). The
#           killed node is started again before the next rep (a new
#           leader each time).
# scale     SCALE_PROCS holder processes (default 2,000, a quarter on each
#           host's mount), SCALE_LOCKS held locks (default 100,000: each
#           holder takes half exclusive on files of its own, half shared
#           on files that the same-numbered holder of every host also
#           takes). Seconds from "go" until every holder holds all its
#           locks; every holder killed at once (kill -9 of 4 process
#           groups); seconds until every host's lock table (its
#           repl.status, written every 200 ms) says 0 held. VmRSS of
#           every statefs and statefs-repl before and with all held.
#           The same 4 groups of holders first on one tmpfs directory
#           (free: until /proc/locks shows no more flocks on it than
#           before) and on one
#           flockfs mount (until its statfs counts none): this
#           machine's floor.
#           SCALE_TRACE=1 prints on stderr, every ~0.2 s after the
#           kill, each host's mount's and table's held count.
# etcd      Debian's etcd, 3 members on loopback: the v3 lock API through
#           the gRPC gateway (kv_lock_cycles.py: why not `etcdctl lock`),
#           1/8 own and 8 contended, like the mount's unc1/unc8/con8.
# redis     Debian's redis-server, SET NX PX + DEL, the same loads.
#
# Every figure is the median of LOCK_MESH_REPS runs, the runs of the
# compared targets interleaved so a change of load hits them alike;
# ratios are of those medians. Everything lives in one directory under
# /dev/shm; daemons listen on 127.0.0.1 only; an EXIT trap takes the
# mesh down and stops every process this script started (by pid).
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
. "$ROOT/tests/bench/lib.sh"
RATIO_FMT=%.3g # its ratios against tmpfs are near 0.005
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
REPS=${LOCK_MESH_REPS:-3}
SECS=${CYCLE_SECONDS:-3}
SCALE_PROCS=${SCALE_PROCS:-2000}
SCALE_LOCKS=${SCALE_LOCKS:-100000}
PARTS=${*:-cycles failover scale etcd redis}
PY=$(command -v /usr/bin/python3 || command -v python3) # not a pyenv shim (0.6 s a start)

LC=$BUILD/tests/bench/lock_cycles
KV=$ROOT/tests/bench/kv_lock_cycles.py
MESHCMD=$ROOT/mount-helpers/statefs-mesh

[ -d "$BUILD" ] || { echo "lock_mesh_bench.sh: no build directory $BUILD" >&2; exit 2; }
[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] ||
	{ echo "lock_mesh_bench.sh: /dev/shm is not a tmpfs" >&2; exit 2; }

TMP=$(mktemp -d /dev/shm/statefs-lock-bench.XXXXXX)
M=$TMP/mesh
OUT=$TMP/figures
PIDS=$TMP/pids
: >"$OUT"
: >"$PIDS"
PORT0=$((10000 + (RANDOM % 1000) * 20)) # below the ephemeral ports

mesh() { STATEFS_BUILD=$BUILD "$MESHCMD" "$@"; }

cleanup() {
	local p
	# holders first (their own process groups), then the mesh
	for p in $(cat "$TMP"/scale.*.pid 2>/dev/null); do kill -9 -- -"$p" 2>/dev/null; done
	while read -r p; do kill "$p" 2>/dev/null; done <"$PIDS"
	[ -f "$M/mesh.env" ] && mesh down "$M" >/dev/null 2>&1
	while read -r p; do
		wait_for 5 eval "! alive $p" || kill -9 "$p" 2>/dev/null
	done <"$PIDS"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# ---- the mesh ----
mnt() { echo "$M/$1/mnt"; }
stat_in() { awk -v n="$2" '$1 == n {print $2; exit}' "$M/$1/store/repl.status" 2>/dev/null; }
leader() { # the leader every member names, or fail
	local k l first=
	for k in n1 n2 n3 n4; do
		l=$(stat_in "$k" lock_leader)
		case $l in ""|-) return 1 ;; esac
		[ -z "$first" ] && first=$l
		[ "$l" = "$first" ] || return 1
	done
	echo "$first"
}
mesh_ready=0
mesh_start() {
	[ -x "$BUILD/repl/statefs-repl" ] && [ -x "$BUILD/fs/statefs" ] ||
		{ skip "lockmesh: statefs or statefs-repl not built in $BUILD"; return 1; }
	[ -x "$LC" ] || { skip "lockmesh: $LC not built"; return 1; }
	note "mesh: 4 nodes (n1..n3 voters, n4 standby) in $M"
	if ! STATEFS_MESH_TIMEOUT=60 mesh up 4 --insecure --set locks.lease=5s "$M" >"$TMP/mesh-up.log" 2>&1; then
		cat "$TMP/mesh-up.log" >&2
		bad "statefs-mesh up 4"
		return 1
	fi
	wait_for 30 leader >/dev/null || { bad "no agreed lock leader"; return 1; }
	mesh_ready=1
}
# roles: LEADER, VOTER (a following voter), STANDBY (n4)
roles() {
	local k
	LEADER=$(leader) || return 1
	for k in n1 n2 n3; do [ "$k" != "$LEADER" ] && { VOTER=$k; break; }; done
	STANDBY=n4
}
if has_part cycles || has_part failover || has_part scale; then
	mesh_start || PARTS=${PARTS//cycles/} PARTS=${PARTS//failover/} PARTS=${PARTS//scale/}
fi

# ---- flock cycles ----
LOADS="unc1:--threads=1 unc8:--threads=8 con8:--threads=8,--contended"
lc() { # NAME DIR OPTIONS(comma-separated)
	local name=$1 dir=$2 opts=${3//,/ }
	opts=${opts//=/ }
	# shellcheck disable=SC2086
	timeout $((SECS + 60)) "$LC" "$dir" --seconds "$SECS" $opts --name "$name" ||
		bad "lock_cycles $name"
}
hosts4() { # one locker per host on one file: total cycles, worst p99
	local k tag=h4.$RANDOM
	for k in n1 n2 n3 n4; do
		timeout $((SECS + 60)) "$LC" "$(mnt "$k")" --seconds "$SECS" --contended \
			--tag "$tag" --name h >"$TMP/h4.$k" &
		started $!
	done
	wait
	cat "$TMP"/h4.n? | awk '
		$1 == "h_cycles" { c += $2; n++ }
		$1 == "h_p50_ms" && $2 > p50 { p50 = $2 }
		$1 == "h_p99_ms" && $2 > p99 { p99 = $2 }
		END { if (n == 4) {
			printf "lockmesh_hosts4_con1_cycles %.0f cycles/s\n", c
			printf "lockmesh_hosts4_con1_p50_ms %.3f ms\n", p50
			printf "lockmesh_hosts4_con1_p99_ms %.3f ms\n", p99 } }'
	[ "$(cat "$TMP"/h4.n? | grep -c h_cycles)" -eq 4 ] || bad "hosts4 lockers"
}
if has_part cycles; then
	if roles; then
		note "cycles: $REPS reps of ${SECS} s per load; leader $LEADER, voter $VOTER, standby $STANDBY"
		mkdir -p "$TMP/tmpfs"
		for ((r = 0; r < REPS; r++)); do
			for l in $LOADS; do
				lc "tmpfs_${l%%:*}" "$TMP/tmpfs" "${l#*:}"
				lc "lockmesh_leader_${l%%:*}" "$(mnt "$LEADER")" "${l#*:}"
				lc "lockmesh_voter_${l%%:*}" "$(mnt "$VOTER")" "${l#*:}"
				lc "lockmesh_standby_${l%%:*}" "$(mnt "$STANDBY")" "${l#*:}"
			done
			hosts4
		done | grep -v max_gap | medians | emit
		for k in leader voter standby; do
			for l in unc1 unc8 con8; do
				ratio "lockmesh_${k}_${l}_vs_tmpfs" "lockmesh_${k}_${l}_cycles" "tmpfs_${l}_cycles"
			done
		done | emit
		echo "lockmesh_commit_ms_leader $(stat_in "$LEADER" lock_commit_ms) ms" | emit
		echo "lockmesh_commit_ms_standby $(stat_in n4 lock_commit_ms) ms" | emit
	else
		bad "cycles: no leader"
	fi
fi

# ---- leader failover ----
failover_once() {
	local v s t
	roles || { bad "failover: no leader"; return 1; }
	v=$VOTER
	"$LC" "$(mnt "$v")" --seconds 6 --name lockmesh_failover_voter >"$TMP/fo.v" &
	t=$!
	started $t
	"$LC" "$(mnt n4)" --seconds 6 --name lockmesh_failover_standby >"$TMP/fo.s" &
	s=$!
	started $s
	sleep 2
	p=$(cat "$M/$LEADER/repl.pid")
	# builtins, microseconds apart (statefs-mesh kill, a script, would
	# let the lockers run on for tens of ms after the signal)
	kill -USR1 $t $s
	kill -9 "$p" || bad "kill -9 of $LEADER's statefs-repl"
	mesh kill "$M" "$LEADER" >/dev/null # its bookkeeping
	wait $t || bad "failover locker on $v"
	wait $s || bad "failover locker on n4"
	grep -h -e failover_ms -e max_gap "$TMP/fo.v" "$TMP/fo.s"
	mesh start "$M" "$LEADER" >/dev/null 2>&1 || bad "statefs-mesh start $LEADER"
	wait_for 30 leader >/dev/null || bad "no agreed leader after restarting $LEADER"
}
if has_part failover; then
	note "failover: $REPS reps, kill -9 of the leader's statefs-repl"
	for ((r = 0; r < REPS; r++)); do failover_once; done | medians | emit
fi

# ---- 2,000 holders, 100,000 locks over 4 hosts ----
# lock_holders (tests/bench/lock_holders.c) on every host, a process
# group each; the same load on one tmpfs directory and one flockfs mount
# first: the floor of freeing the locks of 2,000 killed processes here.
LH=$BUILD/tests/bench/lock_holders
FF=$BUILD/tests/bench/flockfs
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null; }
mount_pid() { cat "$M/$1/mount.pid" 2>/dev/null; } # nK's statefs
rss_all() { # SUFFIX: VmRSS of every daemon
	local k p
	for k in n1 n2 n3 n4; do
		p=$(cat "$M/$k/repl.pid" 2>/dev/null)
		[ -n "$p" ] && echo "lockmesh_rss_repl_${k}_$1 $(rss_kb "$p") kB"
		p=$(mount_pid "$k")
		[ -n "$p" ] && echo "lockmesh_rss_statefs_${k}_$1 $(rss_kb "$p") kB"
	done
}
table_held() { # nK: exclusive + shared holders in its lock table
	echo $(($(stat_in "$1" lock_held_excl) + $(stat_in "$1" lock_held_shared)))
}
all_held_zero() {
	local k
	for k in n1 n2 n3 n4; do [ "$(table_held "$k")" = 0 ] || return 1; done
}
all_forked() { [ "$(cat "$TMP"/scale.n?.out 2>/dev/null | grep -c '^forked')" = 4 ]; }
all_ready() { [ "$(cat "$TMP"/scale.n?.out 2>/dev/null | grep -c '^ready')" = 4 ]; }
# scale_hold TAG FLAT DIR1..DIR4: the holders of host nK on DIRk take
# their locks; prints the take figures. FLAT: --flat or "".
scale_hold() {
	local tag=$1 flat=$2 dirs=("${@:3}") i t0 t1
	rm -f "$TMP/go"
	for i in 0 1 2 3; do
		setsid "$LH" $flat "${dirs[i]}" "n$((i + 1))" "$per" "$nl" "$TMP/go" \
			>"$TMP/scale.n$((i + 1)).out" 2>&1 &
		echo $! >"$TMP/scale.n$((i + 1)).pid"
		disown $! # no "Killed" lines from bash
	done
	wait_for 300 all_forked || { bad "scale $tag: holders did not start: $(tail -2 "$TMP"/scale.n?.out)"; scale_kill; return 1; }
	t0=$(now_ms)
	touch "$TMP/go"
	wait_for 600 all_ready || { bad "scale $tag: not all locks taken: $(tail -2 "$TMP"/scale.n?.out)"; scale_kill; return 1; }
	t1=$(now_ms)
	echo "lockmesh_scale_take_all_$tag $(secs $((t1 - t0))) s"
	echo "lockmesh_scale_take_rate_$tag $((per * 4 * nl * 1000 / (t1 - t0 + 1))) locks/s"
}
# scale_kill: kill -9 the holder groups (a failed run), forget them.
scale_kill() {
	local k
	for k in n1 n2 n3 n4; do
		[ -f "$TMP/scale.$k.pid" ] || continue
		kill -9 -- -"$(cat "$TMP/scale.$k.pid")" 2>/dev/null
		rm -f "$TMP/scale.$k.pid"
	done
}
# scale_free TAG FREED...: kill -9 every holder group at once, wait until
# the command FREED... succeeds, print the seconds; then wait for the
# holders to be gone.
scale_free() {
	local tag=$1 t0 t1 k; shift
	t0=$(now_ms)
	for k in n1 n2 n3 n4; do kill -9 -- -"$(cat "$TMP/scale.$k.pid")" 2>/dev/null; done
	wait_for 120 "$@" || bad "scale $tag: locks still held 120 s after the kill"
	t1=$(now_ms)
	echo "lockmesh_scale_free_all_$tag $(secs $((t1 - t0))) s"
	for k in n1 n2 n3 n4; do
		wait_for 30 eval "! alive $(cat "$TMP/scale.$k.pid")"
		rm -f "$TMP/scale.$k.pid"
	done
}
secs() { echo "$(($1 / 1000)).$(printf %03d $(($1 % 1000)))"; }
# Polled by wait_for; reading 100,000 lines of /proc/locks is itself
# work, so a miss waits 40 ms more. DEV: "MAJ:MIN" as /proc/locks has
# it; BASE: the count before the holders (the mesh's own stores on the
# same tmpfs hold some).
flocks_on() { awk -v d="$1:" '$2 == "FLOCK" && index($6, d) == 1' /proc/locks | wc -l; }
tmpfs_free() { [ "$(flocks_on "$1")" -le "$2" ] || { sleep 0.04; return 1; }; }
flockfs_free() { [ "$(stat -f -c %d "$TMP/ff")" = 0 ] || { sleep 0.04; return 1; }; }
scale_refs() { # tmpfs and flockfs, one directory for the 4 "hosts"
	local d=$TMP/tmpfs k dev base rc=0
	mkdir -p "$d"
	for k in n1 n2 n3 n4; do "$LH" --make "$d" "$k" "$per" "$nl" || { bad "scale: files on tmpfs"; return 1; }; done
	dev=$(printf '%02x:%02x' "$(stat -c %Hd "$d")" "$(stat -c %Ld "$d")")
	base=$(flocks_on "$dev")
	scale_hold tmpfs "" "$d" "$d" "$d" "$d" || return 1
	scale_free tmpfs tmpfs_free "$dev" "$base"
	rm -rf "$d"
	[ -x "$FF" ] || { skip "scale flockfs: $FF not built"; return 0; }
	mkdir -p "$TMP/ff"
	"$FF" "$TMP/ff" >"$TMP/ff.log" 2>&1 &
	started $!
	wait_for 10 mountpoint -q "$TMP/ff" ||
		{ bad "scale: flockfs did not mount"; return 1; }
	for k in n1 n2 n3 n4; do
		"$LH" --flat --make "$TMP/ff" "$k" "$per" "$nl" || { bad "scale: files on flockfs"; rc=1; break; }
	done
	if [ $rc = 0 ] && scale_hold flockfs --flat "$TMP/ff" "$TMP/ff" "$TMP/ff" "$TMP/ff"; then
		scale_free flockfs flockfs_free
	else
		rc=1
	fi
	fusermount3 -u "$TMP/ff"
	return $rc
}
scale_run() {
	local per=$((SCALE_PROCS / 4)) nl=$((SCALE_LOCKS / SCALE_PROCS)) k t0 tracer=
	[ -x "$LH" ] || { skip "scale: $LH not built"; return 0; }
	ulimit -n $((nl * 2 + 64)) 2>/dev/null
	echo "lockmesh_scale_holders $((per * 4)) processes"
	echo "lockmesh_scale_locks $((per * 4 * nl)) locks"
	note "scale: $SCALE_PROCS holders x $nl locks on tmpfs and flockfs"
	scale_refs || return 1
	roles || { bad "scale: no leader"; return 1; }
	note "scale: the same on the mesh, making the files"
	for k in n1 n2 n3 n4; do "$LH" --make "$(mnt n1)" "$k" "$per" "$nl" || { bad "scale: files"; return 1; }; done
	mesh wait "$M" 120 >/dev/null || { bad "scale: files did not replicate"; return 1; }
	rss_all before
	scale_hold statefs "" "$(mnt n1)" "$(mnt n2)" "$(mnt n3)" "$(mnt n4)" || return 1
	sleep 0.5 # a status write
	for k in n1 n2 n3 n4; do
		echo "lockmesh_scale_table_excl_$k $(stat_in "$k" lock_held_excl) locks"
		echo "lockmesh_scale_table_shared_$k $(stat_in "$k" lock_held_shared) locks"
	done
	rss_all held
	if [ -n "${SCALE_TRACE:-}" ]; then # a timeline of the freeing, on stderr
		t0=$(now_ms)
		(while :; do
			l="$(($(now_ms) - t0)) ms:"
			for k in n1 n2 n3 n4; do
				l="$l $k mount $(awk '$1 ~ /^locks_held/ {s += $2} END {print s}' "$(mnt "$k")/.statefs/stats") table $(table_held "$k")"
			done
			echo "$l" >&2
			sleep 0.2
		done) &
		tracer=$!
	fi
	scale_free statefs all_held_zero
	[ -n "$tracer" ] && kill "$tracer" 2>/dev/null
	rss_all after
}
if has_part scale; then
	scale_run | emit
	ratio lockmesh_scale_free_all_statefs_vs_flockfs lockmesh_scale_free_all_statefs \
		lockmesh_scale_free_all_flockfs | emit
	ratio lockmesh_scale_take_all_statefs_vs_flockfs lockmesh_scale_take_all_statefs \
		lockmesh_scale_take_all_flockfs | emit
fi

# ---- etcd and redis, the same loads ----
kv_loads() { # KIND ADDR PREFIX
	"$PY" "$KV" "$1" "$2" 1 "$SECS" own "$3_unc1" || bad "$1 unc1"
	"$PY" "$KV" "$1" "$2" 8 "$SECS" own "$3_unc8" || bad "$1 unc8"
	"$PY" "$KV" "$1" "$2" 8 "$SECS" contended "$3_con8" || bad "$1 con8"
}
etcd_once() {
	local d=$TMP/etcd i cluster="" pids=() p
	mkdir -p "$d"
	for i in 1 2 3; do
		cluster+="${cluster:+,}e$i=http://127.0.0.1:$((PORT0 + 10 + i))"
	done
	for i in 1 2 3; do
		etcd --name "e$i" --data-dir "$d/e$i" \
			--listen-client-urls "http://127.0.0.1:$((PORT0 + 14 + i))" \
			--advertise-client-urls "http://127.0.0.1:$((PORT0 + 14 + i))" \
			--listen-peer-urls "http://127.0.0.1:$((PORT0 + 10 + i))" \
			--initial-advertise-peer-urls "http://127.0.0.1:$((PORT0 + 10 + i))" \
			--initial-cluster "$cluster" --initial-cluster-state new \
			--initial-cluster-token "lockbench$$" --log-level error >>"$d/e$i.log" 2>&1 &
		pids+=($!)
		started $!
	done
	wait_for 30 etcdctl --endpoints "127.0.0.1:$((PORT0 + 15))" endpoint health >/dev/null ||
		bad "etcd did not start"
	# warm-up (the members' first leader election, connections)
	"$PY" "$KV" etcd "127.0.0.1:$((PORT0 + 15))" 1 1 own warm >/dev/null || bad "etcd warm-up"
	kv_loads etcd "127.0.0.1:$((PORT0 + 15))" etcd
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		wait_for 5 eval "! alive $p" || kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$d"
}
if has_part etcd; then
	if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
		skip "etcd: not installed (apt-get install etcd-server etcd-client)"
	else
		note "etcd: 3 members on loopback, $REPS reps, v3 lock API via the gateway"
		for ((r = 0; r < REPS; r++)); do etcd_once; done | medians | emit
		for l in unc1 unc8 con8; do
			ratio "lockmesh_leader_${l}_vs_etcd" "lockmesh_leader_${l}_cycles" "etcd_${l}_cycles"
		done | emit
	fi
fi
if has_part redis; then
	if ! command -v redis-server >/dev/null; then
		skip "redis: not installed (apt-get install redis-server)"
	else
		note "redis: one server on loopback, $REPS reps, SET NX PX + DEL"
		redis-server --port $((PORT0 + 19)) --bind 127.0.0.1 --save '' --appendonly no \
			>"$TMP/redis.log" 2>&1 &
		rp=$!
		started $rp
		wait_for 10 redis-cli -p $((PORT0 + 19)) ping >/dev/null || bad "redis did not start"
		for ((r = 0; r < REPS; r++)); do kv_loads redis "127.0.0.1:$((PORT0 + 19))" redis; done |
			medians | emit
		kill $rp
		for l in unc1 unc8 con8; do
			ratio "lockmesh_leader_${l}_vs_redis" "lockmesh_leader_${l}_cycles" "redis_${l}_cycles"
		done | emit
	fi
fi

if [ -s "$TMP/failed" ]; then
	echo "lock_mesh_bench.sh: $(wc -l <"$TMP/failed") part(s) failed" >&2
	exit 1
fi
