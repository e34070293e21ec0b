#!/usr/bin/env bash
# ctl_keygen.sh — statefsctl keygen and the global --config option:
#  - keygen PREFIX writes PREFIX.key (mode 0600 whatever the umask) and
#    PREFIX.pub (0644), 40 Z85 characters and a newline each, and prints
#    the public key, which is the one libzmq derives from the secret;
#  - it never overwrites: an existing .key or .pub is an error (exit 3,
#    one line), both files untouched, nothing half-written left;
#  - the keys it writes are accepted by a config file ([node] key, a
#    peer's public_key and public_key_file);
#  - --config FILE gives the store directory; -s wins over it; a bad
#    file is exit 2 with its FILE:LINE line.
# san: yes
. "$(dirname "$0")/../lib.sh"

[ -x "$STATEFSCTL" ] || die "no statefsctl in $BIN"
unset STATEFS_STORE
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

# The public key libzmq derives from a Z85 secret key (zmq_curve_public).
derive_public() {
	python3 - "$1" <<'PY'
import ctypes, sys
zmq = ctypes.CDLL("libzmq.so.5")
sec = open(sys.argv[1], "rb").read().strip()
pub = ctypes.create_string_buffer(41)
if zmq.zmq_curve_public(pub, sec) != 0:
    sys.exit("zmq_curve_public failed")
print(pub.value.decode())
PY
}
z85_re='^[]0-9a-zA-Z.:+=^!/*?&<>()[{}@%$#-]{40}$'

# ---- keygen writes both files ----
mkdir -p "$T/k"
out=$(umask 077; ctl keygen "$T/k/n1"); rc=$?
expect_eq "$rc" 0 "keygen exit code"
[ -f "$T/k/n1.key" ] && [ -f "$T/k/n1.pub" ] || die "keygen did not write both files"
expect_eq "$(stat -c %a "$T/k/n1.key")" 600 "mode of the secret key"
expect_eq "$(stat -c %a "$T/k/n1.pub")" 644 "mode of the public key (umask 077)"
expect_eq "$(stat -c %s "$T/k/n1.key")" 41 "size of the secret key file"
expect_eq "$(stat -c %s "$T/k/n1.pub")" 41 "size of the public key file"
expect_eq "$out" "$(cat "$T/k/n1.pub")" "printed public key = PREFIX.pub"
[[ $out =~ $z85_re ]] || fail "public key '$out' is not 40 Z85 characters"
[[ $(cat "$T/k/n1.key") =~ $z85_re ]] || fail "secret key is not 40 Z85 characters"
[ "$(cat "$T/k/n1.key")" != "$out" ] || fail "secret key equals the public key"
if python3 -c 'import ctypes; ctypes.CDLL("libzmq.so.5")' 2>/dev/null; then
	expect_eq "$(derive_public "$T/k/n1.key")" "$out" "public key derived from the secret"
else
	echo "note: no libzmq.so.5 for python3, derivation not checked"
fi
out2=$(umask 000; ctl keygen "$T/k/n2") || fail "keygen n2"
expect_eq "$(stat -c %a "$T/k/n2.key")" 600 "mode of the secret key (umask 000)"
expect_eq "$(stat -c %a "$T/k/n2.pub")" 644 "mode of the public key (umask 000)"
[ "$out2" != "$out" ] || fail "two keygens gave the same key"

# ---- never overwrites ----
sum=$(cat "$T/k/n1.key" "$T/k/n1.pub" | md5sum)
expect_rc 3 "keygen $T/k/n1.key: File exists" ctl keygen "$T/k/n1"
[ ! -s "$T/out" ] || fail "a refused keygen printed a key"
expect_eq "$(cat "$T/k/n1.key" "$T/k/n1.pub" | md5sum)" "$sum" "files after a refused keygen"
expect_eq "$(stat -c %a "$T/k/n1.key")" 600 "mode after a refused keygen"
echo stale >"$T/k/n3.pub"
expect_rc 3 "keygen $T/k/n3.pub: File exists" ctl keygen "$T/k/n3"
[ ! -e "$T/k/n3.key" ] || fail "a refused keygen left n3.key behind"
expect_eq "$(cat "$T/k/n3.pub")" "stale" "an existing .pub is left alone"
expect_rc 3 "keygen $T/nodir/x.key: No such file or directory" ctl keygen "$T/nodir/x"
expect_rc 2 "missing PREFIX" ctl keygen
expect_rc 2 "too many arguments" ctl keygen a b
help=$(ctl keygen --help) || fail "keygen --help exit $?"
[[ $help == "usage: statefsctl [-s STORE_DIR] keygen PREFIX"* ]] || fail "keygen --help: $help"
[[ $help == *"0600"* && $help == *"never"* ]] || fail "keygen --help says nothing of modes: $help"

# ---- the keys work in a config file; --config gives the store ----
cat >"$T/k/n1.conf" <<CONF
[store]
dir = store
[node]
name = n1
key = n1.key
listen = tcp://127.0.0.1:7001
[peer n2]
address = tcp://127.0.0.1:7002
public_key = $out2
[peer n3]
public_key_file = n1.pub
CONF
ctl --config "$T/k/n1.conf" put /a hello || fail "put with --config"
[ -f "$T/k/store/store.mdb" ] || fail "--config: no store in [store] dir (relative to the file)"
expect_eq "$(ctl -s "$T/k/store" get /a)" "hello" "value in the config's store"
expect_eq "$(ctl --config "$T/k/n1.conf" get /a)" "hello" "get with --config"
ctl --config "$T/k/n1.conf" -s "$T/other" put /b x || fail "put with -s and --config"
expect_eq "$(ctl -s "$T/other" get /b)" "x" "-s wins over --config"
expect_eq "$(ctl --config "$T/k/n1.conf" get /b 2>&1)" "statefsctl: get /b: No such file or directory" "-s put nothing in the config's store"
expect_eq "$(STATEFS_STORE=$T/other ctl --config "$T/k/n1.conf" get /a)" "hello" "--config wins over STATEFS_STORE"
expect_eq "$(ctl --config "$T/k/n1.conf" get -s "$T/other" /b)" "x" "-s after the command wins"
printf '[node]\ninsecure = true\n' >"$T/k/nodir.conf"
expect_rc 2 "no store" ctl --config "$T/k/nodir.conf" get /a

# ---- a bad key in the config: exit 2, FILE:LINE ----
chmod 644 "$T/k/n1.key"
expect_rc 2 "$T/k/n1.conf:5: key 'key': $T/k/n1.key: a secret key readable by group or others (mode 0644): chmod 600 it" \
	ctl --config "$T/k/n1.conf" get /a
chmod 600 "$T/k/n1.key"
sed -i 's/^public_key = .*/public_key = tooshort/' "$T/k/n1.conf"
expect_rc 2 "$T/k/n1.conf:9: key 'public_key': a key is 40 Z85 characters, not 8" \
	ctl --config "$T/k/n1.conf" get /a
expect_rc 2 "$T/k/none.conf: No such file or directory" ctl --config "$T/k/none.conf" get /a
expect_rc 2 "option '--config' needs an argument" ctl --config
ctl --help | grep -q -- '--config FILE' || fail "--help does not mention --config"
finish
