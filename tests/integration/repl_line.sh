#!/usr/bin/env bash
# repl_line.sh — three nodes in a line (n1-n2-n3), each with a mount: a
# write through n1's mount shows through n3's; then writes, deletes,
# renames of files and directories, chmod, xattrs, symlinks, mkdir and
# rmdir and TTLs done on all three mounts at once converge: equal
# digests, the same listing (types, modes, owners, sizes, mtimes,
# targets, user.* xattrs, contents) on all three, and no deleted key
# comes back.
# san: yes
. "$(dirname "$0")/../lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
M=$T/mesh
mesh_up 3 --topology line "$M"
m() { echo "$M/$1/mnt"; }

# one write, two hops
echo hello >"$(m n1)/greeting" || die "write through n1's mount"
wait_output 10 hello cat "$(m n3)/greeting" ||
	fail "n1's write not readable through n3's mount: '$(cat "$(m n3)/greeting" 2>&1)'"

# something for everyone to delete and rename later, replicated first
mkdir -p "$(m n1)/shared/gone-dir/sub" && echo x >"$(m n1)/shared/gone-dir/sub/f" &&
	echo y >"$(m n1)/shared/gone" && echo z >"$(m n1)/shared/moved" ||
	die "setup writes"
wait_for 10 test -e "$(m n3)/shared/gone-dir/sub/f" -a -e "$(m n3)/shared/moved" ||
	die "setup did not reach n3"

# node I works in dI/ and, concurrently, on the same shared names
work() { # node
	local k=$1 d
	d=$(m "$k")/d${k#n}
	set -e
	mkdir -p "$d/sub/deep"
	for i in $(seq 1 20); do echo "$k value $i" >"$d/f$i"; done
	echo "deep $k" >"$d/sub/deep/leaf"
	mv "$d/f1" "$d/renamed1"                  # file rename
	mv "$d/sub" "$d/sub-moved"                # directory rename (subtree)
	rm "$d/f2" "$d/f3"
	chmod 600 "$d/f4"
	chmod 751 "$d/sub-moved"
	setfattr -n user.color -v "red-$k" "$d/f5"
	setfattr -n user.gone -v x "$d/f6"
	setfattr -x user.gone "$d/f6"
	ln -s "f7" "$d/link7"
	ln -s "/abs/target/$k" "$d/dangling"
	mkdir "$d/empty" "$d/kept-empty"
	rmdir "$d/empty"
	setfattr -n user.statefs.ttl -v 1h "$d/f8"  # lives on
	setfattr -n user.statefs.ttl -v 2s "$d/f9"  # expires during the test
	mkdir "$d/tree" && echo t >"$d/tree/a" && echo t >"$d/tree/b"
	rm -r "$d/tree"
	echo "again $k" >"$d/f10"                 # overwritten
	# the same names on every node at once: last writer wins everywhere
	echo "from $k" >"$(m "$k")/shared/same"
	chmod 640 "$(m "$k")/shared/moved" 2>/dev/null || true
	rm -f "$(m "$k")/shared/gone"
	rm -rf "$(m "$k")/shared/gone-dir"
}
for k in n1 n2 n3; do
	work "$k" >"$T/work-$k.log" 2>&1 &
	pids+=($!)
done
for i in 0 1 2; do
	wait "${pids[$i]}" || fail "work on n$((i + 1)) failed: $(cat "$T/work-n$((i + 1)).log")"
done
mv "$(m n2)/shared/moved" "$(m n2)/shared/moved-by-n2" || fail "rename of shared/moved"

mesh wait "$M" 30 || fail "digests differ after the concurrent work"

# the listing: every entry of every mount, with what ls -l shows and
# more. The root is left out: it has no record, its times are the mount's.
listing() { # mountpoint
	(cd "$1" && find . -mindepth 1 -path ./.statefs -prune -o -printf '%y %m %U %G %s %T@ %p -> %l\n' |
		LC_ALL=C sort &&
		find . -path ./.statefs -prune -o -type f -print0 | LC_ALL=C sort -z |
		xargs -0 -r getfattr -d -m '^user\.' --absolute-names 2>/dev/null &&
		find . -path ./.statefs -prune -o -type f -print0 | LC_ALL=C sort -z |
		xargs -0 -r md5sum)
}
# the f9s expire after 2 s: compare once they have
for k in n1 n2 n3; do
	wait_for 10 test ! -e "$(m "$k")/d1/f9" -a ! -e "$(m "$k")/d3/f9" ||
		fail "$k: the 2 s TTL of d*/f9 did not expire"
done
mesh wait "$M" 30 || fail "digests differ after the TTLs expired"
listing "$(m n1)" >"$T/l1"
listing "$(m n2)" >"$T/l2"
listing "$(m n3)" >"$T/l3"
[ "$(wc -l <"$T/l1")" -gt 60 ] || fail "n1's listing is short: $(cat "$T/l1")"
diff "$T/l1" "$T/l2" >"$T/d12" || fail "n1 and n2 list differently: $(head -20 "$T/d12")"
diff "$T/l1" "$T/l3" >"$T/d13" || fail "n1 and n3 list differently: $(head -20 "$T/d13")"

# exact values, through every mount
for k in n1 n2 n3; do
	r=$(m "$k")
	for j in 1 2 3; do
		d=$r/d$j
		expect_eq "$(cat "$d/renamed1" 2>&1)" "n$j value 1" "$k: d$j/renamed1"
		expect_eq "$(cat "$d/sub-moved/deep/leaf" 2>&1)" "deep n$j" "$k: d$j/sub-moved/deep/leaf"
		expect_eq "$(stat -c %a "$d/f4" 2>&1)" 600 "$k: mode of d$j/f4"
		expect_eq "$(stat -c %a "$d/sub-moved" 2>&1)" 751 "$k: mode of d$j/sub-moved"
		expect_eq "$(getfattr --absolute-names --only-values -n user.color "$d/f5" 2>&1)" "red-n$j" "$k: user.color of d$j/f5"
		getfattr -n user.gone "$d/f6" >/dev/null 2>&1 && fail "$k: d$j/f6 still has user.gone"
		expect_eq "$(readlink "$d/link7")" f7 "$k: d$j/link7"
		expect_eq "$(cat "$d/link7" 2>&1)" "n$j value 7" "$k: through d$j/link7"
		expect_eq "$(readlink "$d/dangling")" "/abs/target/n$j" "$k: d$j/dangling"
		expect_eq "$(getfattr --absolute-names --only-values -n user.statefs.ttl "$d/f8" 2>&1)" 3600 "$k: TTL of d$j/f8"
		expect_eq "$(cat "$d/f10" 2>&1)" "again n$j" "$k: d$j/f10"
		[ -d "$d/kept-empty" ] || fail "$k: d$j/kept-empty is missing"
		for gone in f1 f2 f3 f9 sub empty tree; do
			[ -e "$d/$gone" ] || [ -L "$d/$gone" ] && fail "$k: deleted d$j/$gone is back"
		done
	done
	for gone in gone gone-dir moved; do
		[ -e "$r/shared/$gone" ] && fail "$k: deleted shared/$gone is back"
	done
	expect_eq "$(cat "$r/shared/moved-by-n2" 2>&1)" z "$k: shared/moved-by-n2"
	case $(cat "$r/shared/same") in
	"from n1" | "from n2" | "from n3") ;;
	*) fail "$k: shared/same is '$(cat "$r/shared/same")'" ;;
	esac
done
expect_eq "$(cat "$(m n2)/shared/same")" "$(cat "$(m n1)/shared/same")" "shared/same on n2 and n1"
expect_eq "$(cat "$(m n3)/shared/same")" "$(cat "$(m n1)/shared/same")" "shared/same on n3 and n1"

# later traffic brings nothing deleted back
echo more >"$(m n3)/after" || fail "write after"
wait_for 10 test -e "$(m n1)/after" || fail "n3's last write did not reach n1"
mesh wait "$M" 30 || fail "digests differ at the end"
for k in n1 n2 n3; do
	[ -e "$(m "$k")/shared/gone" ] || [ -e "$(m "$k")/d2/f2" ] &&
		fail "$k: a deleted key came back"
	mesh_ctl "$M" "$k" check >/dev/null || fail "$k: statefsctl check"
done
mesh_logs_clean "$M"
finish
