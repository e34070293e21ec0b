#!/usr/bin/env bash
# repl_status.sh — what repl.status says of each peer (SPEC §5: connected,
# entries behind): once two nodes hold the same changes, every link
# shows connected=1 behind_out=0 behind_in=0, whichever side wrote.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mesh
mesh_up 2 --topology line --no-mount "$M"
links() { # the figures of every link, one line each
	local k
	for k in n1 n2; do
		awk -v k="$k" '$1 == "peer" {print k, $2, $3, $5, $6}' "$M/$k/store/repl.status"
	done
}
settled() { [ "$(links)" = "$(printf '%s\n' \
	"n1 n2 connected=1 behind_out=0 behind_in=0" \
	"n2 n1 connected=1 behind_out=0 behind_in=0")" ]; }

wait_for 5 settled || fail "fresh mesh: $(links | tr '\n' ';')"
# one after the other: n1's binlog then ends with n2's change, which
# n1 never sends back to n2
mesh_ctl "$M" n1 put /from-n1 1 || die "put on n1"
mesh wait "$M" 20 || die "n1 and n2 did not converge"
mesh_ctl "$M" n2 put /from-n2 2 || die "put on n2"
mesh wait "$M" 20 || die "n1 and n2 did not converge"
# a few heartbeats (200 ms) to report it, and it must hold: the
# figures are checked again once both files were rewritten a second on
updated() { awk '$1 == "updated_ms" {print $2}' "$M/$1/store/repl.status"; }
wait_for 5 settled || fail "in sync, yet: $(links | tr '\n' ';')"
t1=$(($(date +%s%3N) + 1000))
rewritten() { [ "$(updated n1)" -gt "$t1" ] && [ "$(updated n2)" -gt "$t1" ]; }
wait_for 10 rewritten || fail "repl.status not rewritten"
settled || fail "in sync a second later, yet: $(links | tr '\n' ';')"
mesh_logs_clean "$M"
finish
