# tests/lib.sh — shared helpers for integration tests (source it).
#
# Gives: $BIN (build dir with statefs, statefsctl), $T (a private temp
# dir removed at exit), cleanup of every mount and process the test
# started (also when it fails), and small assertions that print what
# they expected and what they got.
#
#   . "$(dirname "$0")/../lib.sh"
#   mount_statefs "$T/store" "$T/mnt" [-o opts]   # waits until mounted
#   wait_for 5 test -e "$T/mnt/x"                  # poll with a deadline
#   expect_eq "$(cat f)" "v" "value of f"
#   expect_errno ENOENT cat "$T/mnt/nope"          # via strace-free check
#   mesh_up 3 --topology ring "$T/mesh"            # statefs-mesh, downed at exit
#   mesh_ctl "$T/mesh" n2 get /k                   # statefsctl on node n2's store
set -u
BIN=${STATEFS_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}
STATEFS=$BIN/fs/statefs
STATEFSCTL=$BIN/ctl/statefsctl
STATEFS_REPL=$BIN/repl/statefs-repl
STATEFS_MESH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/mount-helpers/statefs-mesh
T=$(mktemp -d /tmp/statefs-test.XXXXXX)
_MOUNTS=()
_PIDS=()
_MESHES=()
_FAILS=0

_cleanup() {
	local rc=$? p m i
	if [ $rc -ne 0 ] && [ -s "$T/statefs.log" ]; then
		echo "--- statefs log (last 30 lines)" >&2
		tail -n 30 "$T/statefs.log" >&2
	fi
	for m in "${_MESHES[@]}"; do
		if [ $rc -ne 0 ]; then
			echo "--- statefs-mesh status $m" >&2
			mesh status "$m" >&2
			for i in "$m"/n*/repl.log; do
				echo "--- $i (last 15 lines)" >&2
				tail -n 15 "$i" >&2
			done
		fi
		mesh down "$m" >&2
	done
	# Unmount first so the drivers exit by themselves, then make sure.
	for m in "${_MOUNTS[@]}"; do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for p in "${_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for i in $(seq 50); do
		local alive=0
		for p in "${_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive -eq 1 ] || break
		sleep 0.02
	done
	for p in "${_PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$T" 2>/dev/null
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; _FAILS=$((_FAILS + 1)); }
die() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
# Record a background process to kill at exit.
track_pid() { _PIDS+=("$1"); }

# wait_for SECONDS CMD...: poll CMD every 10 ms until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.01
	done
}

is_mounted() { grep -q " $(realpath -m "$1") fuse" /proc/self/mounts; }

# mount_statefs STORE MNT [statefs options...]: start the driver in the
# foreground in the background, wait until the mount is live.
mount_statefs() {
	local store=$1 mnt=$2; shift 2
	[ -e /dev/fuse ] || skip "no /dev/fuse"
	mkdir -p "$mnt"
	"$STATEFS" -f "$@" "$store" "$mnt" >>"$T/statefs.log" 2>&1 &
	STATEFS_PID=$!
	track_pid $STATEFS_PID
	_MOUNTS+=("$mnt")
	wait_for 10 is_mounted "$mnt" || { cat "$T/statefs.log" >&2; die "mount of $mnt did not come up"; }
}

unmount_statefs() {
	local mnt=$1
	fusermount3 -u "$mnt" || umount "$mnt"
	wait_for 10 bash -c "! kill -0 $STATEFS_PID 2>/dev/null" || die "statefs did not exit after unmount"
}

# wait_output SECONDS WANT CMD...: poll until CMD prints WANT (its
# stdout, without the last newline). Not `wait_for N test "$(CMD)" = W`:
# that runs CMD once, before wait_for starts.
_output_is() { [ "$("${@:2}" 2>/dev/null)" = "$1" ]; }
wait_output() { local t=$1; shift; wait_for "$t" _output_is "$@"; }

expect_eq() { # got want what
	[ "$1" == "$2" ] || fail "$3: got '$1', want '$2'"
}

# expect_errno ERRNAME CMD...: CMD must fail and its stderr must name
# the error's strerror text (coreutils print it).
expect_fail_msg() {
	local want=$1; shift
	local out
	if out=$("$@" 2>&1); then fail "'$*' succeeded, want '$want'"; return; fi
	[[ $out == *"$want"* ]] || fail "'$*': got '$out', want '$want'"
}

# ---- the mesh (mount-helpers/statefs-mesh) ----

# mesh CMD ARGS...: statefs-mesh with this build's binaries.
mesh() { STATEFS_BUILD=$BIN "$STATEFS_MESH" "$@"; }

# mesh_up N [OPTIONS] DIR: a mesh, taken down at exit (also on failure).
# The daemons run sanitized in build-san: give them time to start.
mesh_up() {
	local dir=${*: -1}
	[ -x "$STATEFS_REPL" ] || die "no statefs-repl in $BIN"
	_MESHES+=("$dir")
	STATEFS_MESH_TIMEOUT=${STATEFS_MESH_TIMEOUT:-60} mesh up "$@" ||
		die "statefs-mesh up $* failed"
}

# mesh_ctl DIR nK ARGS...: statefsctl on that node's store.
mesh_ctl() { local d=$1 k=$2; shift 2; "$STATEFSCTL" -s "$d/$k/store" "$@"; }

# mesh_counter DIR nK NAME: a counter of nK's repl.status (repl_applied...).
mesh_counter() { awk -v n="$3" '$1 == n {print $2}' "$1/$2/store/repl.status"; }

# mesh_logs_clean DIR: no daemon of the mesh reported an error or a
# sanitizer finding.
mesh_logs_clean() {
	local f
	for f in "$1"/n*/repl.log "$1"/n*/mount.log; do
		[ -f "$f" ] || continue
		if grep -E -q ': error:|: fatal:|AddressSanitizer|LeakSanitizer|runtime error:' "$f"; then
			fail "$f reports an error: $(grep -E -m 3 ': error:|: fatal:|Sanitizer|runtime error:' "$f")"
		fi
	done
}

# Call at the end: exit non-zero if any check failed.
finish() {
	if [ "$_FAILS" -ne 0 ]; then echo "$_FAILS check(s) failed"; exit 1; fi
	echo "ok"
	exit 0
}

# free_port: a TCP port on 127.0.0.1 that nothing uses now and that this
# test was not given before ($T/.ports), below the kernel's range of
# ephemeral ports: a port from that range can be taken as the source port
# of some outgoing connection before the daemon binds it (statefs-mesh
# picks its ports the same way).
free_port() {
	local lo used p try
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	[ "$lo" -gt 11000 ] || lo=32768
	used=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		while read -r sl p _; do
			[ "$sl" = sl ] || echo $((16#${p##*:}))
		done
		cat "$T/.ports" 2>/dev/null)
	for try in $(seq 200); do
		p=$((10000 + RANDOM % (lo - 10000)))
		grep -qx "$p" <<<"$used" && continue
		echo "$p" >>"$T/.ports"
		echo "$p"
		return 0
	done
	return 1
}
