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
mesh_ctl "$M" n1 put /from-n1 1 || die "put on n1"
mesh_ctl "$M" n2 put /from-n2 2 || die "put on n2"
mesh wait "$M" 20 || die "n1 and n2 did not converge"
# a few heartbeats (200 ms) to report it
wait_for 5 settled || fail "in sync, yet: $(links | tr '\n' ';')"
mesh_logs_clean "$M"
finish
