#!/usr/bin/env bash
# repl_conflict.sh — concurrent writes of one file on both sides of a
# partition (3 nodes in a line, n1 | n2 n3): conflict=lww keeps the
# higher version everywhere, conflict=keep also the losing value as the
# same NAME.conflict-NODE-VERSION on every node, conflict=hook:PROGRAM
# the program's answer on every node (SPEC §5).
# san: yes
. "$(dirname "$0")/../lib.sh"

[ -x "$STATEFS_REPL" ] || die "no statefs-repl in $BIN"
ctl() { "$STATEFSCTL" "$@"; }

# A deterministic hook: both values' lines, sorted, once each.
cat >"$T/hook" <<'EOF'
#!/bin/sh
[ "$#" -eq 3 ] || exit 3
{ cat "$2"; echo; cat "$3"; echo; } | grep -v '^$' | sort -u
EOF
chmod +x "$T/hook"

run() { # policy dir
	local policy=$1 d=$2 p1 p2 p3 n
	p1=$(free_port); p2=$(free_port); p3=$(free_port)
	mkdir -p "$d"
	for n in n1 n2 n3; do ctl -s "$d/$n" put "/init.$n" 0 >/dev/null || die "store $n"; done
	# the partition from the start: n1 cannot talk to n2
	mkdir -p "$d/n1" "$d/n2"
	echo n2 >"$d/n1/repl.block"; echo n1 >"$d/n2/repl.block"
	"$STATEFS_REPL" --insecure --conflict "$policy" --heartbeat 100ms --peer-timeout 1s -n n1 \
		-l "tcp://127.0.0.1:$p1" -p "n2=tcp://127.0.0.1:$p2" "$d/n1" 2>>"$d/n1.log" &
	track_pid $!
	"$STATEFS_REPL" --insecure --conflict "$policy" --heartbeat 100ms --peer-timeout 1s -n n2 \
		-l "tcp://127.0.0.1:$p2" -p "n1=tcp://127.0.0.1:$p1" -p n3= "$d/n2" 2>>"$d/n2.log" &
	track_pid $!
	"$STATEFS_REPL" --insecure --conflict "$policy" --heartbeat 100ms --peer-timeout 1s -n n3 \
		-l "tcp://127.0.0.1:$p3" -p "n2=tcp://127.0.0.1:$p2" "$d/n3" 2>>"$d/n3.log" &
	track_pid $!
	wait_for 20 grep -q 'peer n3 connected=1' "$d/n2/repl.status" ||
		die "$policy: n2 and n3 never connected"
	ctl -s "$d/n1" put /k "from-n1" || die "put on n1"
	ctl -s "$d/n3" put /k "from-n3" || die "put on n3" # later: the higher version
	wait_for 20 test "$(ctl -s "$d/n2" get /k 2>/dev/null)" = from-n3 ||
		die "$policy: n3's write never reached n2"
	rm -f "$d/n1/repl.block" "$d/n2/repl.block" # heal
}

digests_equal() { # dir
	local a b c
	a=$(ctl -s "$1/n1" digest); b=$(ctl -s "$1/n2" digest); c=$(ctl -s "$1/n3" digest)
	[ "$a" = "$b" ] && [ "$b" = "$c" ]
}
listing() { ctl -s "$1" ls / | grep -v '^init\.' | sort | tr '\n' ' '; }

# ---- lww: the higher version, nothing else ----
run lww "$T/lww"
wait_for 20 digests_equal "$T/lww" || fail "lww: digests differ"
for n in n1 n2 n3; do
	expect_eq "$(ctl -s "$T/lww/$n" get /k)" "from-n3" "lww: /k on $n"
	expect_eq "$(listing "$T/lww/$n")" "k " "lww: listing on $n"
done
grep -q 'conflict on /k' "$T/lww/n1.log" "$T/lww/n2.log" || fail "lww: no conflict logged"

# ---- keep: the loser as the same sibling everywhere ----
run keep "$T/keep"
wait_for 20 digests_equal "$T/keep" || fail "keep: digests differ"
sib=/$(ctl -s "$T/keep/n1" ls / | grep '^k\.conflict-') || fail "keep: no sibling on n1"
for n in n1 n2 n3; do
	expect_eq "$(ctl -s "$T/keep/$n" get /k)" "from-n3" "keep: /k on $n"
	expect_eq "$(ctl -s "$T/keep/$n" get "$sib" 2>&1)" "from-n1" "keep: $sib on $n"
	expect_eq "$(listing "$T/keep/$n")" "k ${sib#/} " "keep: listing on $n"
done
[[ $sib =~ ^/k\.conflict-[0-9a-f]{16}-[0-9]+$ ]] || fail "keep: sibling name '$sib'"
grep -hq 'repl_conflicts [1-9]' "$T/keep"/n*/repl.status || fail "keep: conflicts not counted"

# ---- hook: the program's answer everywhere, no sibling ----
run "hook:$T/hook" "$T/hook.d"
want=$(printf 'from-n1\nfrom-n3')
answered() { [ "$(ctl -s "$T/hook.d/n3" get /k)" = "$want" ]; }
wait_for 20 answered || fail "hook: n3 never got the answer"
wait_for 20 digests_equal "$T/hook.d" || fail "hook: digests differ"
for n in n1 n2 n3; do
	expect_eq "$(ctl -s "$T/hook.d/$n" get /k)" "$want" "hook: /k on $n"
	expect_eq "$(listing "$T/hook.d/$n")" "k " "hook: listing on $n"
done
for d in "$T/lww" "$T/keep" "$T/hook.d"; do
	for n in n1 n2 n3; do
		ctl -s "$d/$n" check >/dev/null || fail "check $d/$n"
	done
done
finish
