# tests/lock_mesh_lib.sh — helpers of the mesh-wide lock tests
# (tests/integration/lock_mesh*.sh, SPEC §6). Source it after lib.sh.
#
#   lm_up N [statefs-mesh up options]   mesh in $M with lock cluster, a
#                                       leader elected (dies otherwise)
#   mnt nK                              nK's mountpoint
#   lock_stat nK NAME                   NAME's value in nK's status
#   lock_stat_in STORE_DIR NAME         the same for any store
#   leader_of nK, leader_in STORE_DIR   the leader it sees ("" if none)
#   hold MODE FILE                      flock MODE (ex|sh) and keep it
#                                       (run it in the background)
#   lockx FILE / token FILE             user.statefs.lock(.token)
#   now_ms                              CLOCK_REALTIME in ms
#   none_held NODES..., held_counts     no table holds a lock; the counts
#   locked_increments "HOSTS" P N FILE  flock-guarded increments
#   set_followers L NODES, lockers_start SECONDS TAG, lockers_check TAG
#                                       lock cycles on the non-leaders
#   $PY                                 python3 (the system's first)
#
# The lock service's status: lock_* lines of STORE_DIR/repl.status
# (repl/status.c; `statefsctl status` shows them too): lock_leader NAME
# ("-" for none), lock_role, lock_reachable 0|1, lock_term, counters
# such as lock_drop_cluster.

M=$T/mesh
mnt() { echo "$M/$1/mnt"; }

# The system's python3 first: a version manager's shim in PATH (pyenv)
# costs a shell script per start, and the tests start many.
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi

lock_stat() { lock_stat_in "$M/$1/store" "$2"; } # nK NAME
lock_stat_in() { # STORE_DIR NAME
	awk -v n="$2" '$1 == n {print $2; exit}' "$1/repl.status" 2>/dev/null
}

leader_of() { leader_in "$M/$1/store"; } # nK
leader_in() { # STORE_DIR
	local l
	l=$(lock_stat_in "$1" lock_leader)
	case $l in ""|-|none|0) echo "" ;; *) echo "$l" ;; esac
}

# Every running member names the same leader.
agreed_leader() { # nodes...
	local k l first=
	for k in "$@"; do
		l=$(leader_of "$k")
		[ -n "$l" ] || return 1
		[ -z "$first" ] && first=$l
		[ "$l" = "$first" ] || return 1
	done
	echo "$first"
}
have_leader() { agreed_leader "$@" >/dev/null; }

lm_up() { # N [options]
	local n=$1 k nodes=()
	shift
	mesh_up "$n" "$@" "$M"
	for ((k = 1; k <= n; k++)); do nodes+=("n$k"); done
	wait_for 20 have_leader "${nodes[@]}" || {
		for k in "${nodes[@]}"; do
			echo "$k: $(grep '^lock' "$M/$k/store/repl.status" 2>/dev/null | tr '\n' ' ')" >&2
		done
		die "no agreed lock leader 20 s after statefs-mesh up"
	}
}

# One process that takes the flock itself and keeps it until killed
# (flock FILE sleep N would leave the lock with sleep, which inherits
# the open file, when flock(1) is killed). With STAMP set, it writes
# CLOCK_REALTIME in ms to that file once it holds the lock.
cat >"$T/hold.py" <<'EOF'
import fcntl, os, signal, sys, time
fd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX if sys.argv[1] == "ex" else fcntl.LOCK_SH)
if len(sys.argv) > 3:
    with open(sys.argv[3] + ".tmp", "w") as f:
        f.write("%d\n" % (time.time_ns() // 1000000))
    os.rename(sys.argv[3] + ".tmp", sys.argv[3])
while True:
    signal.pause()
EOF
hold() { exec "$PY" "$T/hold.py" "$@"; }

lockx() { getfattr --absolute-names --only-values -n user.statefs.lock "$1" 2>/dev/null; }
token() { getfattr --absolute-names --only-values -n user.statefs.lock.token "$1" 2>/dev/null; }
lock_is() { [ "$(lockx "$1")" == "$2" ]; }
now_ms() { date +%s%3N; }

# The host a lock's holder shows in user.statefs.lock: the node name
# the mount gives the service.
host_of() { echo "$1"; }

# Exit status and wall time of a command: sets RC and MS.
timed() {
	local t0
	t0=$(now_ms)
	"$@"
	RC=$?
	MS=$(($(now_ms) - t0))
}

# No member's table holds a lock (exclusive or shared).
none_held() { # nodes...
	local k
	for k in "$@"; do
		[ "$(lock_stat "$k" lock_held_excl)" = 0 ] &&
			[ "$(lock_stat "$k" lock_held_shared)" = 0 ] || return 1
	done
}
held_counts() { # nodes...: for a failure message
	local k
	for k in "$@"; do
		echo -n "$k: excl $(lock_stat "$k" lock_held_excl) shared $(lock_stat "$k" lock_held_shared); "
	done
}

# A and B: the two members of H (three nodes) that do not lead.
set_followers() { # LEADER nodes...
	local l=$1 k others=()
	shift
	for k in "$@"; do [ "$k" = "$l" ] || others+=("$k"); done
	A=${others[0]} B=${others[1]}
}

# Lock cycles (tests/bench/lock_cycles) for SECONDS on two hosts: 4
# lockers on files of their own through A's mount, 4 on one file
# (lc.TAG) through B's; their figures in $T/lc.TAG.a and .b (names a_*,
# b_*), their pids in LC_A and LC_B. lockers_check waits for them and
# expects both to succeed.
lockers_start() { # SECONDS TAG
	local lc=$BIN/tests/bench/lock_cycles
	[ -x "$lc" ] || die "$lc is not built"
	"$lc" "$(mnt "$A")" --seconds "$1" --threads 4 --tag "$2" --name a >"$T/lc.$2.a" 2>&1 &
	LC_A=$!
	track_pid $LC_A
	"$lc" "$(mnt "$B")" --seconds "$1" --threads 4 --contended --tag "$2" --name b >"$T/lc.$2.b" 2>&1 &
	LC_B=$!
	track_pid $LC_B
}
lockers_check() { # TAG WHAT
	wait $LC_A
	expect_eq $? 0 "lock_cycles on $A $2 ($(tr '\n' ' ' <"$T/lc.$1.a"))"
	wait $LC_B
	expect_eq $? 0 "lock_cycles on $B $2 ($(tr '\n' ' ' <"$T/lc.$1.b"))"
	echo "cycles/s $2: $A $(awk '$1 == "a_cycles" {print $2}' "$T/lc.$1.a"), $B $(awk '$1 == "b_cycles" {print $2}' "$T/lc.$1.b")"
}

# PROCS processes on each of HOSTS run N flock-guarded read-increment-
# write cycles of FILE (a name in every mount), each through its own
# host's mount; LOCKED_FAILED: how many processes failed.
locked_increments() { # "HOSTS" PROCS N FILE
	local k p j failed=0 pids=()
	for k in $1; do
		for ((p = 0; p < $2; p++)); do
			(cd "$(mnt "$k")" || exit 1
			for ((j = 0; j < $3; j++)); do
				flock "$4" -c "n=\$(cat $4); echo \$((n + 1)) > $4" || exit 1
			done) &
			pids+=($!)
			track_pid $!
		done
	done
	for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
	LOCKED_FAILED=$failed
}

lm_require() {
	[ -e /dev/fuse ] || skip "no /dev/fuse"
	command -v flock >/dev/null || skip "flock(1) missing"
	command -v getfattr >/dev/null || skip "getfattr missing (package attr)"
	[ -n "$PY" ] || skip "python3 missing"
}
