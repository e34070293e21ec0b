#!/usr/bin/env bash
# ctl_transfer.sh — statefsctl import (CSV and dump) and dump: quoting,
# error reporting with line numbers, per-batch atomicity, and the exact
# dump | import round trip (equal digest) with awkward names and values.
# san: yes
. "$(dirname "$0")/../lib.sh"

[ -x "$STATEFSCTL" ] || die "no statefsctl in $BIN"
ctl() { "$STATEFSCTL" "$@"; }

expect_rc() { # RC MSG CMD...
	local want=$1 msg=$2 rc err; shift 2
	"$@" >"$T/out" 2>"$T/err"; rc=$?
	err=$(cat "$T/err")
	[ "$rc" -eq "$want" ] || { fail "'$*': exit $rc, want $want (stderr: $err)"; return; }
	[ "$(wc -l <"$T/err")" -eq 1 ] || fail "'$*': want one stderr line, got: $err"
	[[ $err == "statefsctl: "*"$msg"* ]] || fail "'$*': stderr '$err', want '$msg'"
}

# ---- CSV: quoted commas, doubled quotes, newlines in quotes, CRLF ----
S=$T/csv
printf '%s\r\n' 'id,name,note' >"$T/a.csv"
printf '%s\n' '1,plain,x' '"2","comma, inside","y"' \
	'3,"say ""hi""",z' '"4","two' 'lines",w' '' 'a/b,slash,v' >>"$T/a.csv"
printf '%s' '5,last,no newline' >>"$T/a.csv"
ctl -s "$S" import --csv --header --key-column 1 --prefix /t "$T/a.csv" 2>"$T/err" ||
	fail "csv import: $(cat "$T/err")"
[ -s "$T/err" ] && fail "import printed on a non-terminal stderr without -v: $(cat "$T/err")"
expect_eq "$(ctl -s "$S" ls /t | tr '\n' ' ')" "1 2 3 4 5 a_b " "csv keys"
expect_eq "$(ctl -s "$S" get /t/1)" "1,plain,x" "row 1"
expect_eq "$(ctl -s "$S" get /t/2)" '"2","comma, inside","y"' "row with quoted comma"
expect_eq "$(ctl -s "$S" get /t/3)" '3,"say ""hi""",z' "row with doubled quotes"
expect_eq "$(ctl -s "$S" get /t/4)" "$(printf '"4","two\nlines",w')" "row with a newline in quotes"
expect_eq "$(ctl -s "$S" get /t/5)" "5,last,no newline" "last row without newline"
expect_eq "$(ctl -s "$S" get /t/a_b)" "a/b,slash,v" "'/' in key becomes '_'"
ctl -s "$S" get /t/1 | od -c | grep -q '\\r' && fail "CR of CRLF kept in the value"
# key column 2, quoted; --ttl; -v summary
ctl -s "$S" import -v --csv --key-column 2 --prefix p2 --ttl 1h "$T/a.csv" 2>"$T/err" || fail "csv col 2"
grep -qE '^imported 7 records in [0-9]+\.[0-9]{2} s$' "$T/err" || fail "summary: $(cat "$T/err")"
expect_eq "$(ctl -s "$S" get '/p2/comma, inside')" '"2","comma, inside","y"' "key from a quoted column"
expect_eq "$(ctl -s "$S" stat /p2/plain | grep ^ttl)" "ttl 3600000ms" "csv --ttl"

# on a terminal the summary comes without -v (script(1) gives a pty)
if command -v script >/dev/null; then
	script -qec "'$STATEFSCTL' -s '$T/tty' import --csv '$T/a.csv'" /dev/null >"$T/tty.out" </dev/null
	grep -qE 'imported 7 records in [0-9]+\.[0-9]{2} s' "$T/tty.out" || fail "no summary on a terminal: $(cat "$T/tty.out")"
fi

# ---- CSV errors: named line, exit 3, failing batch rolled back ----
printf '%s\n' 'k1,v' 'k2,v' 'k3,"v' 'k4,v' >"$T/bad1.csv"
expect_rc 3 "line 3: quoted field not closed before the end of input (0 records committed before it)" \
	ctl -s "$T/b1" import --csv "$T/bad1.csv"
expect_rc 1 "get /k1" ctl -s "$T/b1" get /k1
printf '%s\n' 'k1,v' 'k2,v' 'k3,v' 'k4,x"y' 'k5,v' >"$T/bad2.csv"
expect_rc 3 "line 4: '\"' inside an unquoted field (2 records committed before it)" \
	ctl -s "$T/b2" import --csv --batch 2 "$T/bad2.csv"
expect_eq "$(ctl -s "$T/b2" ls | tr '\n' ' ')" "k1 k2 " "batches before the error kept, failing batch rolled back"
printf '%s\n' '"a"b,v' >"$T/bad3.csv"
expect_rc 3 "line 1: text after a closing quote" ctl -s "$T/b3" import --csv "$T/bad3.csv"
printf '%s\n' 'a,b' 'c' >"$T/bad4.csv"
expect_rc 3 "line 2: no column 2" ctl -s "$T/b4" import --csv --key-column 2 "$T/bad4.csv"
printf '%s\n' ',b' >"$T/bad5.csv"
expect_rc 3 "line 1: key column 1 is empty" ctl -s "$T/b5" import --csv "$T/bad5.csv"
{ echo 'ok,1'; printf '%0300d,2\n' 0; } >"$T/bad6.csv"
expect_rc 3 "line 2: File name too long (0 records committed before it)" ctl -s "$T/b6" import --csv "$T/bad6.csv"
expect_rc 1 "get /ok" ctl -s "$T/b6" get /ok
expect_rc 2 "need --csv" ctl -s "$T/b5" import --key-column 2
expect_rc 2 "bad --key-column" ctl -s "$T/b5" import --csv --key-column 0
expect_rc 3 "import $T/nope.csv: No such file or directory" ctl -s "$T/b5" import --csv "$T/nope.csv"
expect_rc 3 "line 1: not a statefs dump" ctl -s "$T/b5" import "$T/bad4.csv"

# ---- dump | import: exact round trip with awkward names and values ----
A=$T/orig
ctl -s "$A" put "/sp ace/tab$(printf '\t')name" "tab" || fail "put tab name"
ctl -s "$A" put "/sp ace/new$(printf '\n')line" "$(printf 'multi\nline\n')" || fail "put newline name"
ctl -s "$A" put "/unicode/ключ-日本-é" "значение" || fail "put unicode"
ctl -s "$A" put -- "-leading-dash" "-v" || fail "put dash name"
ctl -s "$A" put "/pct/100%" "50%25 %" || fail "put percent"
ctl -s "$A" put --mode 0600 --ttl 2h /modes/secret s || fail "put mode ttl"
printf 'bin\0\001\377\r\n end' | ctl -s "$A" put /bin/nul || fail "put bin"
: | ctl -s "$A" put /empty || fail "put empty"
head -c 300000 /dev/urandom | ctl -s "$A" put /bin/random || fail "put random"
ctl -s "$A" dump >"$T/dump" || fail "dump"
expect_eq "$(head -1 "$T/dump")" "statefs-dump 1" "dump header"
expect_eq "$(wc -l <"$T/dump")" "15" "dump lines (header + 6 dirs + 8 files)"
grep -qx 'f 0600 [0-9]* [0-9]* 7200000 /modes/secret s' "$T/dump" || fail "dump record of /modes/secret"
# bytes >= 0x80 stay raw (UTF-8 readable); controls, space and '%' are escaped
grep -q "^f 0644 [0-9]* [0-9]* 0 /bin/nul bin%00%01$(printf '\377')%0D%0A%20end\$" "$T/dump" || fail "dump escaping"
grep -q "^f 0644 [0-9]* [0-9]* 0 /pct/100%25 50%2525%20%25\$" "$T/dump" || fail "dump escaping of %"
grep -qx 'f 0644 [0-9]* [0-9]* 0 /empty ' "$T/dump" || fail "dump of an empty value"
grep -qx 'd 0755 [0-9]* [0-9]* 0 /sp%20ace' "$T/dump" || fail "dump of a dir with a space"
ctl -s "$T/copy" import <"$T/dump" 2>"$T/err" || fail "import of dump: $(cat "$T/err")"
expect_eq "$(ctl -s "$T/copy" digest)" "$(ctl -s "$A" digest)" "digest after dump | import"
ctl -s "$T/copy" dump >"$T/dump2"
cmp -s "$T/dump" "$T/dump2" || fail "second dump differs: $(diff "$T/dump" "$T/dump2" | head -5)"
ctl -s "$T/copy" get "/sp ace/new$(printf '\n')line" >"$T/v"
printf 'multi\nline' | cmp -s - "$T/v" || fail "value of the newline-named key"
ctl -s "$A" get /bin/random >"$T/r1"; ctl -s "$T/copy" get /bin/random >"$T/r2"
cmp -s "$T/r1" "$T/r2" || fail "random value after round trip"
# importing again over itself changes nothing
ctl -s "$T/copy" import "$T/dump" || fail "re-import"
expect_eq "$(ctl -s "$T/copy" digest)" "$(ctl -s "$A" digest)" "digest after re-import"
# a dump of a prefix, symlinks and directory TTLs from a hand-written dump
ctl -s "$A" dump /sp%20ace >/dev/null 2>&1
ctl -s "$A" dump "/sp ace" >"$T/sub" || fail "dump PREFIX"
expect_eq "$(wc -l <"$T/sub")" "4" "dump of a prefix"
cat >"$T/hand" <<'EOF'
statefs-dump 1
d 0700 0 0 60000 /h
f 0640 0 0 0 /h/f v
l 0777 0 0 0 /h/link ../target%20x
EOF
ctl -s "$T/h" import "$T/hand" || fail "import hand-written dump"
expect_eq "$(ctl -s "$T/h" stat /h/link | grep -E '^(type|target)' | tr '\n' ' ')" "type symlink target ../target x " "symlink"
expect_eq "$(ctl -s "$T/h" stat /h | grep -E '^(mode|ttl)' | tr '\n' ' ')" "mode 0700 ttl 60000ms " "dir mode and TTL"
ctl -s "$T/h" dump >"$T/hand2"
cmp -s "$T/hand" "$T/hand2" || fail "hand dump round trip: $(diff "$T/hand" "$T/hand2")"
printf 'statefs-dump 1\nf 0644 0 0 0 /ok v\nf 0644 0 0 0 /bad%%zz v\n' >"$T/bad.dump"
expect_rc 3 "line 3: bad escape" ctl -s "$T/bd" import "$T/bad.dump"
printf 'statefs-dump 1\nx 0644 0 0 0 /k v\n' >"$T/bad.dump"
expect_rc 3 "line 2: bad record type" ctl -s "$T/bd" import "$T/bad.dump"

finish
