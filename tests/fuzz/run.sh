#!/usr/bin/env bash
# tests/fuzz/run.sh — a libFuzzer target: every regression input and
# seed once, then fuzzing for a bounded time. Two targets:
#   change  the store's wire decoders and store_apply_remote
#           (fuzz_change.c; seeds corpus/, regression inputs regress/)
#   wire    the replicator's message decoders, repl/wire.h
#           (fuzz_wire.c; seeds corpus_wire/, regress_wire/ if any)
#
#   tests/fuzz/run.sh [SECONDS]   fuzz for SECONDS (default 30; 0: only
#                                 the regression run)
#
# Environment: FUZZ_TARGET (change, the default, or wire); FUZZ_BUILD (default build-fuzz/ at the top) is where the
# target is built when missing or older than its sources; FUZZ_ARTIFACTS
# (default FUZZ_BUILD/artifacts) keeps the inputs of failures.
#
# Pass or fail depends only on crashes, leaks, timeouts, sanitizer
# reports and the target's own round-trip checks: an input the store
# rejects is fine (most regression inputs are ones it must refuse).
# Known defects being fixed are suppressed one function at a time in
# known_ubsan.supp and known_asan.supp, so that the test catches new
# ones meanwhile. The fuzzer works on a copy of corpus/
# in a temp dir: the committed corpus never grows during a test.
#
# Exit: 0 pass, 1 fail (the failing input's path and base64 printed),
# 77 skip (no clang or no fuzzer runtime; reason printed).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${1:-30}
OUT=${FUZZ_BUILD:-$ROOT/build-fuzz}
ART=${FUZZ_ARTIFACTS:-$OUT/artifacts}
TARGET=${FUZZ_TARGET:-change}
case $TARGET in
change) CORPUS=$HERE/corpus REGRESS=$HERE/regress ;;
wire) CORPUS=$HERE/corpus_wire REGRESS=$HERE/regress_wire ;;
*) echo "FAIL: FUZZ_TARGET=$TARGET: change or wire"; exit 1 ;;
esac
FUZZ=$OUT/fuzz_$TARGET
ART=$ART/$TARGET

# ---- build when needed ----
stale=
if [ ! -x "$FUZZ" ]; then
	stale=1
elif [ -n "$(find "$ROOT/store" "$ROOT/common" "$ROOT/repl" "$HERE" \( -name '*.[ch]' -o -name build.sh \) -newer "$FUZZ" 2>/dev/null | head -n 1)" ]; then
	stale=1
fi
if [ -n "$stale" ]; then
	out=$("$HERE/build.sh" "$OUT" 2>&1)
	rc=$?
	if [ $rc -eq 77 ]; then
		echo "$out"
		exit 77
	fi
	if [ $rc -ne 0 ]; then
		echo "$out" | tail -n 30
		echo "FAIL: tests/fuzz/build.sh failed"
		exit 1
	fi
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/statefs-fuzzrun.XXXXXX")
cleanup() { rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$W/tmp" "$W/corpus" "$W/art" "$ART"

# The scratch stores go under $W/tmp (a sanitizer report or a timeout
# ends the target before it can remove its own).
export STATEFS_FUZZ_TMP=$W/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && {
	STATEFS_FUZZ_TMP=$(mktemp -d /dev/shm/statefs-fuzzrun.XXXXXX)
	trap 'cleanup; rm -rf "$STATEFS_FUZZ_TMP"' EXIT
}
# Leaks count (tests/run turns LeakSanitizer off for integration tests;
# one libFuzzer process is not what hung there). UBSan is compiled
# recoverable so that known_ubsan.supp can name functions (suppressions
# work only for recoverable checks), and made fatal here.
# Suppressions match function names: they need llvm-symbolizer (llvm-14).
if ! command -v llvm-symbolizer >/dev/null 2>&1; then
	for f in /usr/lib/llvm-*/bin/llvm-symbolizer; do
		[ -x "$f" ] && export ASAN_SYMBOLIZER_PATH=$f
	done
	[ -n "${ASAN_SYMBOLIZER_PATH:-}" ] ||
		echo "note: no llvm-symbolizer (Debian: llvm-14): known defects will not be suppressed"
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:symbolize=1:suppressions=$HERE/known_asan.supp
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$HERE/known_ubsan.supp
LIBFUZZER=(-rss_limit_mb=2048 -timeout=10)

# report KIND FILE: keep the input, print where it is and its bytes.
report() {
	local kind=$1 f=$2 keep
	keep=$ART/$(basename "$f")
	cp "$f" "$keep"
	echo "FAIL: $kind: input kept at $keep ($(stat -c %s "$f") bytes), base64:"
	if [ "$(stat -c %s "$f")" -le 65536 ]; then
		base64 -w 0 "$f"
		echo
	else
		echo "(too large to print: $(sha256sum "$f" | cut -c1-16)...)"
	fi
	echo "  rerun: $FUZZ $keep"
	echo "  minimize: $FUZZ -minimize_crash=1 -runs=10000 $keep"
}

# Lines of a libFuzzer log that say what went wrong.
why() {
	grep -E -m 12 'ERROR:|SUMMARY:|runtime error:|BUG:|^    #[0-9] ' "$1" | cut -c1-200
}

fail=0

# ---- regression: every file once, all in one process ----
files=("$CORPUS"/*)
[ -d "$REGRESS" ] && files=("$REGRESS"/* "${files[@]}")
if ! "$FUZZ" "${LIBFUZZER[@]}" "${files[@]}" >"$W/regress.log" 2>&1; then
	# Name the culprits: each file alone, from an empty store.
	for f in "${files[@]}"; do
		if ! "$FUZZ" "${LIBFUZZER[@]}" "$f" >"$W/one.log" 2>&1; then
			why "$W/one.log"
			report "regression input $(basename "$f")" "$f"
			fail=1
		fi
	done
	if [ $fail -eq 0 ]; then
		why "$W/regress.log"
		echo "FAIL: the regression files fail together but pass one by one (log above)"
		fail=1
	fi
fi
echo "regression: ${#files[@]} inputs, $([ $fail -eq 0 ] && echo ok || echo FAILED)"
[ "$SECS" -gt 0 ] 2>/dev/null || exit $fail

# ---- fuzz for SECS seconds on a copy of the corpus ----
cp "$CORPUS"/* "$W/corpus/"
for f in "$REGRESS"/*; do # the small ones seed the fuzzer too
	[ -f "$f" ] && [ "$(stat -c %s "$f")" -le 4096 ] && cp "$f" "$W/corpus/regress-$(basename "$f")"
done
log=$OUT/fuzz-$TARGET.log
start=$SECONDS
"$FUZZ" "${LIBFUZZER[@]}" -max_total_time="$SECS" -max_len=4096 \
	-print_final_stats=1 -artifact_prefix="$W/art/" "$W/corpus" >"$log" 2>&1
rc=$?
SECS=$((SECONDS - start))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
echo "fuzz: ${SECS} s, ${execs:-?} execs, ${rate:-?} execs/s, corpus $(ls "$W/corpus" | wc -l) files (log $log)"
if [ $rc -ne 0 ]; then
	why "$log"
	found=0
	for f in "$W"/art/*; do
		[ -f "$f" ] || continue
		found=1
		report "fuzzing found $(basename "$f" | cut -d- -f1)" "$f"
		if "$FUZZ" "${LIBFUZZER[@]}" "$f" >"$W/one.log" 2>&1; then
			echo "  (passes alone, from an empty store: it needs the state earlier inputs left)"
		fi
	done
	[ $found -eq 1 ] || echo "FAIL: libFuzzer exited $rc with no artifact (log $log)"
	fail=1
fi
[ $fail -eq 0 ] && echo "ok"
exit $fail
