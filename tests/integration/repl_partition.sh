#!/usr/bin/env bash
# repl_partition.sh — four nodes in a ring, cut into n1,n2 | n3,n4 with
# every process running. Both sides keep accepting writes (the same keys
# included, deletes included); after the heal all four converge to equal
# digests, the later write of each key wins everywhere, no deleted key
# comes back, and statefsctl check passes on every node.
# san: yes
. "$(dirname "$0")/../lib.sh"
M=$T/mesh
mesh_up 4 --topology ring --no-mount "$M"
ctl() { mesh_ctl "$M" "$@"; }
nodes="n1 n2 n3 n4"

# before: every node holds the seed
for k in a b c d e f; do ctl n1 put "/p/$k" "seed-$k" || die "seed /p/$k"; done
ctl n1 put /p/dir/x x && ctl n1 put /p/dir/y y || die "seed /p/dir"
mesh wait "$M" 30 || die "the seed did not converge"

mesh partition "$M" n1,n2 n3,n4 || die "statefs-mesh partition"
for k in n1 n2 n3 n4; do
	expect_eq "$(sort "$M/$k/store/repl.block" | tr '\n' ' ')" \
		"$(case $k in n1|n2) echo "n3 n4 " ;; *) echo "n1 n2 " ;; esac)" "repl.block of $k"
done

# Each step waits for the clock to move so that "later" is later in
# every node's hybrid logical clock (they share this machine's clock).
tick() { local t0; t0=$(date +%s%3N); while [ "$(date +%s%3N)" -le $((t0 + 2)) ]; do :; done; }
ctl n3 put /p/a "B-early" || fail "n3 put /p/a";      tick
ctl n1 put /p/a "A-later" || fail "n1 put /p/a";      tick   # A wins /p/a
ctl n2 put /p/b "A-early" || fail "n2 put /p/b";      tick
ctl n4 put /p/b "B-later" || fail "n4 put /p/b";      tick   # B wins /p/b
ctl n4 put /p/c "B-write" || fail "n4 put /p/c";      tick
ctl n1 del /p/c || fail "n1 del /p/c";                tick   # the delete is later: gone
ctl n2 put /p/d "A-write" || fail "n2 put /p/d";      tick
ctl n3 del /p/d || fail "n3 del /p/d";                tick   # gone
ctl n1 del /p/e || fail "n1 del /p/e"                        # untouched by B: gone
ctl n4 del /p/f || fail "n4 del /p/f"                        # untouched by A: gone
ctl n3 put /p/dir/z z || fail "n3 put /p/dir/z";      tick
ctl n2 del -r /p/dir || fail "n2 del -r /p/dir";      tick   # later: x and y go
# /p/dir/z was created where the delete was not seen: it stays, and so
# /p/dir shows as its (derived) directory (README, "Directories are derived")
ctl n1 put /p/only-a A || fail "n1 put /p/only-a"
ctl n4 put /p/only-b B || fail "n4 put /p/only-b"
ctl n2 put /p/both-new A2 || fail "n2 put /p/both-new"; tick
ctl n3 put /p/both-new B2 || fail "n3 put /p/both-new"

# the sides stay apart while cut: each holds its own view
expect_eq "$(ctl n2 get /p/a)" "A-later" "/p/a on n2 during the partition"
expect_eq "$(ctl n4 get /p/a)" "B-early" "/p/a on n4 during the partition"
ctl n2 get /p/only-b >/dev/null 2>&1 && fail "/p/only-b crossed the partition"
ctl n3 get /p/only-a >/dev/null 2>&1 && fail "/p/only-a crossed the partition"
[ "$(ctl n1 digest)" = "$(ctl n3 digest)" ] && fail "digests equal across the partition"

mesh heal "$M" || fail "statefs-mesh heal"
ls "$M"/n*/store/repl.block >/dev/null 2>&1 && fail "repl.block left after heal"
mesh wait "$M" 30 || fail "digests differ after the heal"

for k in $nodes; do
	expect_eq "$(ctl "$k" get /p/a 2>&1)" "A-later" "/p/a on $k"
	expect_eq "$(ctl "$k" get /p/b 2>&1)" "B-later" "/p/b on $k"
	expect_eq "$(ctl "$k" get /p/only-a 2>&1)" "A" "/p/only-a on $k"
	expect_eq "$(ctl "$k" get /p/only-b 2>&1)" "B" "/p/only-b on $k"
	expect_eq "$(ctl "$k" get /p/both-new 2>&1)" "B2" "/p/both-new on $k"
	for gone in /p/c /p/d /p/e /p/f /p/dir/x /p/dir/y; do
		ctl "$k" get "$gone" >/dev/null 2>&1
		rc=$?
		[ $rc -eq 1 ] || fail "deleted $gone on $k: get exit $rc, want 1"
	done
	expect_eq "$(ctl "$k" get /p/dir/z 2>&1)" "z" "/p/dir/z on $k"
	expect_eq "$(ctl "$k" ls /p/dir | tr '\n' ' ')" "z " "ls /p/dir on $k"
	expect_eq "$(ctl "$k" ls /p | tr '\n' ' ')" "a b both-new dir only-a only-b " "ls /p on $k"
	ctl "$k" check >/dev/null || fail "statefsctl check on $k"
done

# later traffic brings nothing back
ctl n4 put /p/after 1 || fail "put /p/after"
mesh wait "$M" 30 || fail "digests differ at the end"
for k in $nodes; do
	expect_eq "$(ctl "$k" ls /p | tr '\n' ' ')" "a after b both-new dir only-a only-b " "ls /p on $k at the end"
done
mesh_logs_clean "$M"
finish
