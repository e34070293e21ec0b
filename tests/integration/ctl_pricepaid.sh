#!/usr/bin/env bash
# ctl_pricepaid.sh — import 106,178 price-paid shaped CSV rows (about
# 17 MB, SPEC §10's replication data set) with statefsctl import --csv:
# every row lands as one key, in under 60 s, and the values are the rows.
. "$(dirname "$0")/../lib.sh"

[ -x "$STATEFSCTL" ] || die "no statefsctl in $BIN"
GEN=$BIN/tests/bench/gen_pricepaid
[ -x "$GEN" ] || die "no gen_pricepaid in $BIN"
export STATEFS_STORE=$T/s
ctl() { "$STATEFSCTL" "$@"; }

"$GEN" >"$T/pp.csv" || die "gen_pricepaid failed"
expect_eq "$(wc -l <"$T/pp.csv")" "106178" "generated rows"
"$GEN" -n 1000 -s 7 | cmp -s - <("$GEN" -n 1000 -s 7) || fail "gen_pricepaid is not deterministic"
"$GEN" -n 1000 -s 7 | cmp -s - <("$GEN" -n 1000 -s 8) && fail "the seed changes nothing"
echo "csv bytes $(wc -c <"$T/pp.csv")"

start=$(date +%s%N)
ctl import -v --csv --key-column 1 --prefix /pricepaid "$T/pp.csv" 2>"$T/err" || fail "import: $(cat "$T/err")"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "import_106178_rows $ms ms ($(cat "$T/err"))"
[ "$ms" -lt 60000 ] || fail "import took $ms ms, want < 60000"
expect_eq "$(ctl ls /pricepaid | wc -l)" "106178" "keys after import"
grep -q '^imported 106178 records in ' "$T/err" || fail "summary line: $(cat "$T/err")"

# spot checks: first, a middle and the last row, each under its GUID
for n in 1 53089 106178; do
	row=$(sed -n "${n}p" "$T/pp.csv")
	guid=${row%%\",*}; guid=${guid#\"}
	expect_eq "$(ctl get "/pricepaid/$guid")" "$row" "value of row $n"
done
# a second import of the same file overwrites: still 106178 keys
ctl import --csv --prefix /pricepaid "$T/pp.csv" || fail "re-import"
expect_eq "$(ctl ls /pricepaid | wc -l)" "106178" "keys after re-import"
finish
