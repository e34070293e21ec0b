# tests/bench/lib.sh — what every benchmark script here shares (sourced
# by run, repl_bench.sh and lock_mesh_bench.sh). The functions read the
# caller's TMP (its private directory), OUT (the figures printed so
# far), PARTS and PIDS when they are called, not when sourced.

note() { echo "# $*" >&2; }
skip() { echo "skip: $*"; }
# bad: count a failure (in a file: it is often called inside a pipeline).
bad() { echo "FAILED: $*" >&2; echo "$*" >>"$TMP/failed"; }
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
# emit: copy figure lines to stdout and to $OUT (for the ratios).
emit() { tee -a "$OUT"; }

# started PID: a process to stop at exit; alive PID: running, not a zombie.
started() { echo "$1" >>"$PIDS"; }
alive() { [ -r "/proc/$1/stat" ] && ! awk '{ exit $3 == "Z" ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null; }

# wait_for SECONDS CMD...: poll CMD every 10 ms until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.01
	done
}

# medians: read `name value unit` lines of several runs, print each name
# once (first-seen order) with the median of its values.
medians() {
	awk '{
		if (!($1 in cnt)) { order[++n] = $1; cnt[$1] = 0 }
		v[$1, ++cnt[$1]] = $2; unit[$1] = $3
	} END {
		for (i = 1; i <= n; i++) {
			k = order[i]; m = cnt[k]
			for (a = 1; a <= m; a++) x[a] = v[k, a] + 0
			for (a = 2; a <= m; a++) {   # insertion sort
				t = x[a]
				for (b = a - 1; b >= 1 && x[b] > t; b--) x[b + 1] = x[b]
				x[b + 1] = t
			}
			med = m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
			if (unit[k] == "s" || unit[k] == "ms") printf "%s %.3f %s\n", k, med, unit[k]
			else printf "%s %.0f %s\n", k, med, unit[k]
		}
	}'
}

# ratio NAME A B: NAME A/B ratio, from figures already printed in $OUT;
# RATIO_FMT (default %.2f) for ratios far below 1.
ratio() {
	awk -v n="$1" -v a="$2" -v b="$3" -v f="${RATIO_FMT:-%.2f}" '
		$1 == a { x = $2; hx = 1 } $1 == b { y = $2; hy = 1 }
		END { if (hx && hy && y > 0) printf "%s " f " ratio\n", n, x / y }' "$OUT"
}
