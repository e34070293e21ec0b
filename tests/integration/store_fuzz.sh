#!/usr/bin/env bash
# store_fuzz.sh — the store's wire decoders (store_change_decode,
# store_rec_decode) and store_apply_remote under libFuzzer with ASan and
# UBSan: every regression input and seed once, then 20 s of fuzzing
# (tests/fuzz/run.sh; FUZZ_SECONDS changes the time). Fails on a crash,
# leak, timeout, sanitizer report, round-trip mismatch or a store that
# cannot read back or check what it accepted, printing the input; skips (77) without clang or its fuzzer runtime. The target is
# built with clang into build-fuzz/ whatever STATEFS_BUILD is: it carries
# its own sanitizers, so no "san: yes" here.
. "$(dirname "$0")/../lib.sh"

bash "$(dirname "$0")/../fuzz/run.sh" "${FUZZ_SECONDS:-20}"
