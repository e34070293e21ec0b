#!/usr/bin/env bash
# ctl_watch.sh — statefsctl watch prints each change committed by other
# processes as it commits (no polling interval), filters by prefix,
# replays with --from, and exits 0 on SIGINT/SIGTERM.
# san: yes
. "$(dirname "$0")/../lib.sh"

[ -x "$STATEFSCTL" ] || die "no statefsctl in $BIN"
export STATEFS_STORE=$T/s
ctl() { "$STATEFSCTL" "$@"; }

ctl put /before old || fail "put /before"
node=$(ctl status | awk '$1 == "node_id" {print $2}')
seq0=$(ctl status | awk '$1 == "binlog_last" {print $2}')

# watch everything, from the current end: /before must not show up
"$STATEFSCTL" watch >"$T/all" 2>"$T/all.err" &
W1=$!; track_pid $W1
"$STATEFSCTL" watch /app >"$T/app" 2>"$T/app.err" &
W2=$!; track_pid $W2
# both watchers have started once they are blocked waiting: give them a
# change they must see, and only then the ones under test
wait_for 10 bash -c "ctl() { '$STATEFSCTL' \"\$@\"; }; ctl put /app/sync x; grep -q ' /app/sync ' '$T/app' && grep -q ' /app/sync ' '$T/all'" ||
	fail "watchers did not start"
start=$(date +%s%N)
ctl put /app/k "hello" || fail "put /app/k"
wait_for 5 grep -q " put /app/k 5 $node\$" "$T/app" || fail "watch /app did not see put /app/k: $(cat "$T/app")"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "watch saw a put from another process after $ms ms"
ctl put /other v && ctl del /app/k && ctl put "/app/sp ace" v || fail "more changes"
wait_for 5 grep -q ' /app/sp%20ace ' "$T/app" || fail "watch did not see '/app/sp ace'"
wait_for 5 grep -q ' /app/sp%20ace ' "$T/all" || fail "watch / did not see '/app/sp ace'"
grep -q ' /before ' "$T/all" && fail "watch printed a change from before it started"
grep -q ' /other ' "$T/app" && fail "watch /app printed /other"
grep -q " put /other 1 $node\$" "$T/all" || fail "watch / did not print /other: $(cat "$T/all")"
grep -q " del /app/k 0 $node\$" "$T/app" || fail "watch did not print the delete: $(cat "$T/app")"
# sequence numbers only grow, one line per change
awk 'NR > 1 && $1 <= prev {bad = 1} {prev = $1} END {exit bad}' "$T/all" || fail "sequence not increasing: $(cat "$T/all")"

# SIGINT and SIGTERM: exit 0
kill -INT $W1; kill -TERM $W2
wait $W1; rc1=$?; wait $W2; rc2=$?
expect_eq "$rc1" 0 "watch exit status after SIGINT"
expect_eq "$rc2" 0 "watch exit status after SIGTERM"
[ -s "$T/all.err" ] && fail "watch wrote to stderr: $(cat "$T/all.err")"

# --from replays the binlog after a sequence, then follows
timeout -k 2 10 "$STATEFSCTL" watch --from "$seq0" >"$T/from" &
W3=$!; track_pid $W3
wait_for 5 grep -q " put /app/sp%20ace " "$T/from" || fail "watch --from: $(cat "$T/from")"
expect_eq "$(head -1 "$T/from" | awk '{print $1, $2, $3}')" "$((seq0 + 1)) mkdir /app" "first line of --from"
kill -TERM $W3; wait $W3
ctl watch --from x >/dev/null 2>&1; expect_eq "$?" 2 "watch --from x exit"
finish
