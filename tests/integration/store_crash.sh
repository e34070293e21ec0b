#!/usr/bin/env bash
# store_crash.sh — a writer killed with SIGKILL in the middle of a big
# transaction never leaves a partial batch, never loses a committed one,
# and the store opens afterwards with no repair step.
#
# 20 rounds: start `store_torture batch` (500 puts per transaction, the
# batch number printed after each commit), wait until it has committed at
# least one batch in this round, kill -9 it after a random delay, then
# check with a fresh process that every batch it reported is complete,
# that at most one more (committed, not yet reported) is present, and
# that every batch present has all its 500 keys with their exact values.
#
# Then a process killed while it holds a read transaction: its reader slot
# is stale; later opens clear it, and writers keep working.
# san: yes
. "$(dirname "$0")/../lib.sh"

TORTURE=$BIN/tests/unit/store_torture
[ -x "$TORTURE" ] || skip "no $TORTURE (build tests/unit first)"
STORE=$T/store
N=500
ROUNDS=20
reported=0

lines() { [ -s "$1" ] && wc -l <"$1" || echo 0; }

for round in $(seq 1 $ROUNDS); do
	log=$T/batch$round.out
	"$TORTURE" batch "$STORE" $N >"$log" 2>"$T/batch$round.err" &
	pid=$!
	track_pid $pid
	wait_for 30 test -s "$log" || die "round $round: no batch committed in 30 s: $(cat "$T/batch$round.err")"
	sleep "0.$(printf '%03d' $((RANDOM % 40)))"
	kill -9 $pid
	wait $pid 2>/dev/null
	status=$?
	[ $status -eq 137 ] || die "round $round: the writer exited by itself ($status): $(cat "$T/batch$round.err")"
	# The last complete line is the last batch reported committed.
	last=$(grep -E '^[0-9]+$' "$log" | tail -n 1)
	[ -n "$last" ] || die "round $round: no batch number reported"
	[ "$last" -ge "$reported" ] || fail "round $round: batch numbers went back ($last < $reported)"
	reported=$((last + 1))
	if ! out=$("$TORTURE" batches "$STORE" $N $reported 2>&1); then
		echo "$out" | head -n 20 >&2
		fail "round $round: store check after kill -9"
		break
	fi
	present=$(echo "$out" | tail -n 1)
	echo "round $round: $reported batches reported, $present present"
	# The next writer resumes after the highest batch present.
	reported=$present
done

# A process killed while it holds a read transaction.
"$TORTURE" hold "$STORE" >"$T/hold.out" 2>&1 &
hpid=$!
track_pid $hpid
wait_for 10 grep -q holding "$T/hold.out" || die "hold: no read transaction: $(cat "$T/hold.out")"
readers() { mdb_stat -n -r "$STORE/store.mdb" 2>/dev/null; }
if command -v mdb_stat >/dev/null; then
	readers | grep -qw "$hpid" || fail "hold: pid $hpid not in the reader table: $(readers)"
fi
kill -9 $hpid
wait $hpid 2>/dev/null
# A new writer opens the store (clearing the stale slot) and commits.
"$TORTURE" write "$STORE" 0 200 0 >"$T/after.log" 2>&1 ||
	fail "write after a reader was killed: $(cat "$T/after.log")"
if command -v mdb_stat >/dev/null; then
	if readers | grep -qw "$hpid"; then
		fail "stale reader $hpid still in the reader table: $(readers)"
	fi
fi
out=$("$TORTURE" batches "$STORE" $N $reported 2>&1) ||
	fail "batches after the reader test: $out"
finish
