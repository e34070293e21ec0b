#!/usr/bin/env bash
# repl_fuzz.sh — the replicator's message decoders (repl/wire.h:
# wire_check, the body decoders and the change and record walkers)
# under libFuzzer with ASan and UBSan: every seed of
# tests/fuzz/corpus_wire (valid messages of each type and malformed
# ones) once, then 20 s of fuzzing (tests/fuzz/run.sh with
# FUZZ_TARGET=wire; FUZZ_SECONDS changes the time). Fails on a crash,
# leak, sanitizer report, a result other than 0 or -EPROTO, a decoded
# pointer outside the frame, or an accepted message that does not
# encode back to its own bytes, printing the input; skips (77) without
# clang or its fuzzer runtime. Built with clang into build-fuzz/
# whatever STATEFS_BUILD is, so no "san: yes" here.
. "$(dirname "$0")/../lib.sh"

FUZZ_TARGET=wire bash "$(dirname "$0")/../fuzz/run.sh" "${FUZZ_SECONDS:-20}"
