#!/usr/bin/env bash
# store_procs.sh — 8 processes write one store at once and nothing is lost.
#
# Each writer puts 1,000 keys of its own (/p<ID>/k<i>, one transaction
# each) and 50 keys that every writer also writes (/shared/s<i>), all at
# the same time. Afterwards every key is present with its exact value,
# every shared key holds a value one of the writers wrote, and the record
# count, the binlog count and the last binlog sequence equal the number
# of changes the writers made, and store_check passes (store_torture
# check).
# san: yes
. "$(dirname "$0")/../lib.sh"

TORTURE=$BIN/tests/unit/store_torture
[ -x "$TORTURE" ] || skip "no $TORTURE (build tests/unit first)"
NPROC=8 N=1000 SHARED=50
STORE=$T/store

# Create the store first, so the writers race on data, not on creation.
"$TORTURE" check "$STORE" 0 0 0 >/dev/null ||
	die "a fresh store does not check out empty"

pids=()
for id in $(seq 0 $((NPROC - 1))); do
	"$TORTURE" write "$STORE" "$id" "$N" "$SHARED" >"$T/w$id.log" 2>&1 &
	pids+=($!)
	track_pid $!
done
for i in "${!pids[@]}"; do
	if ! wait "${pids[$i]}"; then
		cat "$T/w$i.log" >&2
		fail "writer $i failed"
	fi
done

out=$("$TORTURE" check "$STORE" "$NPROC" "$N" "$SHARED" 2>&1)
rc=$?
echo "$out" | tail -n 20
expect_eq "$rc" 0 "store_torture check exit status"

# statefsctl, when it exists, agrees on a sample of keys.
if [ -x "$STATEFSCTL" ]; then
	v=$("$STATEFSCTL" -s "$STORE" get /p3/k999 2>&1)
	expect_eq "$v" "3:999" "statefsctl get /p3/k999"
fi
finish
