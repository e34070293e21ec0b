#!/usr/bin/env bash
# ctl_basic.sh — statefsctl get/put/del/ls/stat/digest/status, exit codes
# and the one-line messages, against a real store (no mount needed).
# san: yes
. "$(dirname "$0")/../lib.sh"

[ -x "$STATEFSCTL" ] || die "no statefsctl in $BIN"
export STATEFS_STORE=$T/s
ctl() { "$STATEFSCTL" "$@"; }

# expect_rc RC MSG CMD...: CMD exits RC and prints exactly one stderr
# line, "statefsctl: " followed by text containing MSG.
expect_rc() {
	local want=$1 msg=$2 rc err; shift 2
	"$@" >"$T/out" 2>"$T/err"; rc=$?
	err=$(cat "$T/err")
	[ "$rc" -eq "$want" ] || { fail "'$*': exit $rc, want $want (stderr: $err)"; return; }
	[ "$(wc -l <"$T/err")" -eq 1 ] || fail "'$*': want one stderr line, got: $err"
	[[ $err == "statefsctl: "*"$msg"* ]] || fail "'$*': stderr '$err', want '$msg'"
}

# ---- no store yet: read commands must not create one ----
expect_rc 3 "$T/s: no statefs store here" ctl get /a
[ ! -e "$T/s" ] || fail "get created the store directory"
expect_rc 2 "no store" env -u STATEFS_STORE "$STATEFSCTL" get /a

# ---- put/get round trips ----
ctl put a/b hello || fail "put a/b"
expect_eq "$(ctl get /a/b)" "hello" "get /a/b"
ctl get a/b >"$T/v"; expect_eq "$(od -An -c "$T/v" | tr -s ' ')" " h e l l o" "no newline added"
expect_eq "$(ctl get /a/b/)" "hello" "trailing slash"
printf 'from stdin\n' | ctl put /in || fail "put from stdin"
ctl get /in >"$T/v"; printf 'from stdin\n' >"$T/w"; cmp -s "$T/v" "$T/w" || fail "stdin value"
printf 'a\0b\0\0c\377' >"$T/bin"
ctl put /bin <"$T/bin" && ctl get /bin >"$T/v" && cmp -s "$T/bin" "$T/v" || fail "binary with NUL bytes"
head -c 1048576 /dev/urandom >"$T/big"
ctl put /big <"$T/big" && ctl get /big >"$T/v" && cmp -s "$T/big" "$T/v" || fail "1 MiB random value"
: | ctl put /empty || fail "put empty"
expect_eq "$(ctl get /empty | wc -c)" "0" "empty value"
ctl put /a/b overwritten && expect_eq "$(ctl get /a/b)" "overwritten" "overwrite"
ctl put -- /dash -5 && expect_eq "$(ctl get /dash)" "-5" "value after --"

# ---- errors ----
expect_rc 1 "get /nope: No such file or directory" ctl get nope
expect_rc 1 "get /a/nope: No such file or directory" ctl get /a/nope
expect_rc 3 "get /a: Is a directory" ctl get /a
expect_rc 2 "missing KEY" ctl get
expect_rc 2 "bad key" ctl get a//b
expect_rc 2 "bad key" ctl put /a/../b v
expect_rc 2 "bad key" ctl get ./x
expect_rc 2 "too many arguments" ctl put k v extra
expect_rc 2 "unknown option '--bogus'" ctl get --bogus /a
expect_rc 2 "unknown command 'frob'" ctl frob
expect_rc 2 "missing COMMAND" ctl
expect_rc 2 "bad --ttl" ctl put --ttl 5x k v
expect_rc 2 "at most 3660d" ctl put --ttl 3661d k v
expect_rc 2 "bad --mode" ctl put --mode 0999 k v
expect_rc 2 "needs an argument" ctl put k --ttl
expect_rc 1 "put /q/r: No such file or directory" ctl put --no-parents /q/r v
expect_rc 3 "put /a/b/c: Not a directory" ctl put /a/b/c v
head -c $((16 * 1024 * 1024 + 1)) /dev/zero >"$T/toobig"
expect_rc 3 "put /huge: File too large" ctl put /huge <"$T/toobig"
head -c $((16 * 1024 * 1024)) /dev/zero | ctl put /max16 || fail "16 MiB value refused"
long=$(printf 'n%.0s' $(seq 256))
expect_rc 3 "File name too long" ctl put "/$long" v
ctl put "/${long:1}" v || fail "255-byte name refused"
: >"$T/file"
expect_rc 3 "$T/file: not a directory" ctl -s "$T/file" get /a
expect_rc 3 "$T/file: not a directory" ctl -s "$T/file" put /a v
mkdir -p "$T/junk"; head -c 65536 /dev/urandom >"$T/junk/store.mdb"
cp "$T/junk/store.mdb" "$T/junk.orig"
expect_rc 3 "$T/junk/store.mdb: not a statefs store" ctl -s "$T/junk" get /a
expect_rc 3 "$T/junk/store.mdb: not a statefs store" ctl -s "$T/junk" put /a v
cmp -s "$T/junk.orig" "$T/junk/store.mdb" || fail "a foreign store.mdb was modified"

# ---- del ----
ctl put /d/x/y 1 && ctl put /d/z 2 || fail "put under /d"
expect_rc 3 "del /d: Directory not empty" ctl del /d
expect_rc 1 "del /d/nope: No such file or directory" ctl del /d/nope
ctl del /d/z || fail "del file"
expect_rc 1 "get /d/z" ctl get /d/z
ctl del -r /d || fail "del -r"
expect_rc 1 "ls /d" ctl ls /d
expect_rc 2 "refusing to delete the root" ctl del -r /

# ---- ls ----
ctl put /l/b 22 && ctl put /l/a 1 && ctl put --mode 0600 /l/c/d 333 || fail "put under /l"
expect_eq "$(ctl ls /l | tr '\n' ' ')" "a b c " "ls order"
expect_eq "$(ctl ls -R /l | tr '\n' ' ')" "/l/a /l/b /l/c /l/c/d " "ls -R"
expect_eq "$(ctl ls -0 /l | tr '\0' ' ')" "a b c " "ls -0"
expect_eq "$(ctl ls -l /l | awk '{print $1, $2, $3, $5, $6}' | tr '\n' ' ')" \
	"f 0644 1 never a f 0644 2 never b d 0755 0 never c " "ls -l"
expect_eq "$(ctl ls -l /l/c | awk '{print $1, $2, $3, $6}')" "f 0600 3 d" "ls -l mode"
[[ $(ctl ls -l /l/a | awk '{print $4}') =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]] || fail "ls -l mtime"
expect_eq "$(ctl ls /l/a)" "a" "ls of a file"
ctl ls / | grep -qx l || fail "ls / has l"

# ---- stat ----
ctl put --ttl 1h --mode 0640 /st v123 || fail "put /st"
ctl stat st >"$T/st" || fail "stat"
expect_eq "$(awk '{print $1}' "$T/st" | tr '\n' ' ')" \
	"path type mode uid gid size mtime ctime ttl expires version origin_seq " "stat fields"
expect_eq "$(grep ^path "$T/st")" "path /st" "stat path"
expect_eq "$(grep ^type "$T/st")" "type file" "stat type"
expect_eq "$(grep ^mode "$T/st")" "mode 0640" "stat mode"
expect_eq "$(grep ^uid "$T/st")" "uid $(id -u)" "stat uid"
expect_eq "$(grep ^size "$T/st")" "size 4" "stat size"
expect_eq "$(grep ^ttl "$T/st")" "ttl 3600000ms" "stat ttl"
[[ $(grep ^expires "$T/st") =~ ^expires\ [0-9-]{10}T[0-9:]{8}\.[0-9]{3}Z$ ]] || fail "stat expires: $(grep ^expires "$T/st")"
[[ $(grep ^mtime "$T/st") =~ ^mtime\ [0-9-]{10}T[0-9:]{8}\.[0-9]{9}Z$ ]] || fail "stat mtime"
[[ $(grep ^version "$T/st") =~ ^version\ [0-9]+\.[0-9]+\ [0-9a-f]{16}$ ]] || fail "stat version"
expect_eq "$(ctl stat /a | grep -E '^(type|ttl|expires)' | tr '\n' ' ')" "type dir ttl none expires never " "stat dir"
expect_rc 1 "stat /nope" ctl stat /nope

# ---- TTL: gone after ~1 s for every reader, no sweeper needed ----
ctl put --ttl 1s /short v || fail "put --ttl"
expect_eq "$(ctl get /short)" "v" "before expiry"
wait_for 5 bash -c "! '$STATEFSCTL' get /short >/dev/null" || fail "TTL 1s: still there after 5 s"
expect_rc 1 "get /short: No such file or directory" ctl get /short
ctl put --ttl 500ms /ms v && wait_for 5 bash -c "! '$STATEFSCTL' get /ms >/dev/null" || fail "TTL 500ms"

# ---- digest: same data in any order equal; different data differs ----
for k in 1 2 3; do ctl -s "$T/d1" put "/x/k$k" "v$k"; done
for k in 3 1 2; do ctl -s "$T/d2" put "/x/k$k" "v$k"; done
ctl -s "$T/d3" put /x/k1 v1; ctl -s "$T/d3" put /x/k2 v2; ctl -s "$T/d3" put /x/k3 vX
d1=$(ctl -s "$T/d1" digest); d2=$(ctl -s "$T/d2" digest); d3=$(ctl -s "$T/d3" digest)
[[ $d1 =~ ^[0-9a-f]{64}$ ]] || fail "digest format: $d1"
expect_eq "$d1" "$d2" "digest of the same data written in another order"
[ "$d1" != "$d3" ] || fail "digest equal for different data"
ctl -s "$T/d3" put /x/k3 v3
expect_eq "$(ctl -s "$T/d3" digest)" "$d1" "digest after fixing the value"
ctl -s "$T/d3" put --mode 0600 /x/k3 v3
[ "$(ctl -s "$T/d3" digest)" != "$d1" ] || fail "digest ignores modes"

# ---- status ----
ctl -s "$T/d1" status >"$T/status" || fail "status"
for f in node_id node_name records tombstones value_bytes map_size map_used \
	map_used_pct binlog_first binlog_last binlog_count local_seq watermark; do
	grep -q "^$f " "$T/status" || fail "status lacks $f"
done
expect_eq "$(grep '^binlog_last ' "$T/status")" "binlog_last 4" "status binlog_last (mkdir /x + 3 puts)"
expect_eq "$(grep '^value_bytes ' "$T/status")" "value_bytes 6" "status value_bytes"
expect_eq "$(grep '^held ' "$T/status")" "held 0" "status held"
expect_eq "$(grep '^too_old ' "$T/status")" "too_old 0" "status too_old"
expect_eq "$(grep '^replicator' "$T/status")" "replicator not running" "status without a replicator"
# A live, fresh repl.status is shown; the same after its pid died is not.
printf 'pid %s\nupdated_ms %s\nrepl_in 7\npeer b connected=0 last_contact_ms=-1 behind_out=0 behind_in=0 in_per_s=0 out_per_s=0 address=-\n' \
	"$$" "$(date +%s%3N)" >"$T/d1/repl.status"
ctl -s "$T/d1" status >"$T/status" || fail "status with repl.status"
expect_eq "$(grep -E '^(replicator|repl_|peer )' "$T/status")" "replicator running
replicator_pid $$
repl_in 7
peer b connected=0 last_contact_ms=-1 behind_out=0 behind_in=0 in_per_s=0 out_per_s=0 address=-" "status of a live replicator"
sed -i 's/^pid .*/pid 999999999/' "$T/d1/repl.status"
expect_eq "$(ctl -s "$T/d1" status | grep -E '^(replicator|repl_|peer )')" "replicator not running" "status of a dead replicator"
rm -f "$T/d1/repl.status"

# ---- check: ok on a sound store, exit 3 naming the problem on a bad one ----
expect_eq "$(ctl -s "$T/d1" check)" "ok" "check of a sound store"
# A record whose parent has no record, written behind the store's back
# with lmdb-utils: the copy of /a/b's record under the key of /zz/b.
ctl -s "$T/bad" put /a/b v >/dev/null || fail "put /a/b"
mdb_dump -n -s rec "$T/bad/store.mdb" >"$T/rec.dump" || fail "mdb_dump"
python3 - "$T/rec.dump" "$T/rec2.dump" <<'PY' || fail "crafting the bad record"
import sys
lines = open(sys.argv[1]).read().split("\n")
end = lines.index("HEADER=END")
head, body = lines[:end + 1], lines[end + 1:]
pairs = dict(zip(body[0::2], body[1::2]))
val = pairs[" 2f610062"]                 # key of /a/b: "/a" NUL "b"
open(sys.argv[2], "w").write("\n".join(head + [" 2f7a7a0062", val, "DATA=END", ""]))
PY
mdb_load -n -s rec -f "$T/rec2.dump" "$T/bad/store.mdb" || fail "mdb_load"
out=$(ctl -s "$T/bad" check 2>&1); rc=$?
expect_eq "$rc" 3 "check of a store with an orphan record: exit status"
[[ $out == *"/zz/b has no parent record"* ]] || fail "check message: $out"

# ---- --help, --version ----
ctl --help | grep -q '^usage: statefsctl' || fail "--help"
ctl -h >/dev/null || fail "-h"
ctl --version | grep -qE '^statefsctl [0-9]' || fail "--version"
for c in get put del ls stat import dump watch digest status check keygen; do
	out=$(env -u STATEFS_STORE "$STATEFSCTL" "$c" --help) || fail "$c --help exit $?"
	[[ $out == "usage: statefsctl [-s STORE_DIR] $c"* ]] || fail "$c --help text: $out"
done
ctl --help | grep -q '^  keygen PREFIX' || fail "--help does not list keygen"

finish
