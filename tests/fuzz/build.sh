#!/usr/bin/env bash
# tests/fuzz/build.sh — build the libFuzzer targets and the seed generators.
#
#   tests/fuzz/build.sh [OUTDIR]     (default: build-fuzz/ at the top)
#
# Gives OUTDIR/fuzz_change and OUTDIR/fuzz_wire (libFuzzer + ASan +
# UBSan), OUTDIR/gen_corpus and OUTDIR/gen_wire_corpus (ASan + UBSan,
# plain programs). Exits 77 with the reason printed when clang or its
# fuzzer runtime is missing.
#
# Why a script and not meson: meson picks one C compiler per build
# directory, and the project's builds use gcc (whose sanitizers have no
# libFuzzer). A meson target "only when the compiler is clang" would never
# be built by tests/run, and a third meson build directory with CC=clang
# would drag in FUSE and everything else. The fuzzer needs exactly the
# store's sources (store/*.c, common/*.c: what store/meson.build and
# common/meson.build compile into store_lib and common_lib; common/
# holds the config file's reader too, hence libinih and libzmq), lmdb
# and libsodium, and the wire target repl/wire.c besides, so they are
# compiled here with clang directly, in one command,
# with the project's own warnings and defines from the top meson.build.
# A new file in store/ or common/ is picked up by the globs.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/build-fuzz}
CC=${FUZZ_CC:-}
if [ -z "$CC" ]; then
	for c in clang clang-14; do
		command -v "$c" >/dev/null 2>&1 && { CC=$c; break; }
	done
fi
[ -n "$CC" ] || { echo "SKIP: no clang (Debian: apt-get install clang)"; exit 77; }
command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: no pkg-config"; exit 77; }
DEPS=$(pkg-config --cflags --libs lmdb libsodium inih libzmq) ||
	{ echo "SKIP: pkg-config finds no lmdb, libsodium, inih or libzmq"; exit 77; }
# The fuzzer runtime is a separate package (libclang-rt-14-dev): a clang
# without it fails at link time, so probe with a one-line program.
mkdir -p "$OUT"
probe=$OUT/probe.c
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' >"$probe"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$probe" -o "$OUT/probe" >"$OUT/probe.log" 2>&1; then
	echo "SKIP: $CC cannot link -fsanitize=fuzzer (Debian: apt-get install libclang-rt-14-dev): $(head -c 300 "$OUT/probe.log")"
	exit 77
fi
rm -f "$probe" "$OUT/probe" "$OUT/probe.log"

CFLAGS=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -I"$ROOT"
	-D_GNU_SOURCE -D_FILE_OFFSET_BITS=64
	-Wall -Wextra -Wno-sign-compare -Wstrict-prototypes
	-Wmissing-prototypes -Wwrite-strings -Werror
	-fsanitize=address,undefined)
# UBSan stays recoverable (no -fno-sanitize-recover): suppressions only
# work for recoverable checks; run.sh makes every report fatal with
# UBSAN_OPTIONS=halt_on_error=1. Run the target by hand with that too.
SRCS=("$ROOT"/store/*.c "$ROOT"/common/*.c)

# shellcheck disable=SC2086 # DEPS is a word list from pkg-config
"$CC" "${CFLAGS[@]}" -fsanitize=fuzzer "${SRCS[@]}" \
	"$ROOT/tests/fuzz/fuzz_change.c" -o "$OUT/fuzz_change.new" $DEPS -lpthread
mv "$OUT/fuzz_change.new" "$OUT/fuzz_change"
# shellcheck disable=SC2086
"$CC" "${CFLAGS[@]}" "${SRCS[@]}" "$ROOT/tests/fuzz/gen_corpus.c" \
	-o "$OUT/gen_corpus.new" $DEPS -lpthread
mv "$OUT/gen_corpus.new" "$OUT/gen_corpus"
WIRE=("$ROOT/repl/wire.c" "$ROOT/tests/fuzz/wire_samples.c")
# shellcheck disable=SC2086
"$CC" "${CFLAGS[@]}" -fsanitize=fuzzer "${SRCS[@]}" "${WIRE[@]}" \
	"$ROOT/tests/fuzz/fuzz_wire.c" -o "$OUT/fuzz_wire.new" $DEPS -lpthread
mv "$OUT/fuzz_wire.new" "$OUT/fuzz_wire"
# shellcheck disable=SC2086
"$CC" "${CFLAGS[@]}" "${SRCS[@]}" "${WIRE[@]}" "$ROOT/tests/fuzz/gen_wire_corpus.c" \
	-o "$OUT/gen_wire_corpus.new" $DEPS -lpthread
mv "$OUT/gen_wire_corpus.new" "$OUT/gen_wire_corpus"
echo "built $OUT/fuzz_change $OUT/gen_corpus $OUT/fuzz_wire $OUT/gen_wire_corpus"
