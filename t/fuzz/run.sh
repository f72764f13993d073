#!/bin/bash
# run.sh: build the libFuzzer targets t/fuzz/fuzz-*.c with clang (ASan +
# UBSan, leaks detected) against every source of the gateway but main.c and
# admin*.c, and run them, seeded with seeds.tar.gz and the unit-test fixtures.
#
# To refresh seeds.tar.gz after a long run (say run.sh 600) found more:
#   for t in provider request sse; do mkdir -p new/corpus-$t
#     $FUZZ_DIR/fuzz-$t -merge=1 new/corpus-$t $FUZZ_DIR/corpus-$t; done
#   tar -czf t/fuzz/seeds.tar.gz -C new --sort=name --owner=0 --group=0 \
#     --mtime=@0 corpus-provider corpus-request corpus-sse
#
#   t/fuzz/run.sh [SECONDS]         build, then run each target SECONDS
#                                   (default 60); exit 1 if one failed
#   t/fuzz/run.sh build             build only; print the target names
#   t/fuzz/run.sh run NAME SECONDS  run one target (exit 0: nothing found)
#
# Everything goes under $FUZZ_DIR (default $top_builddir/t/tmp/fuzz): obj/
# (the instrumented objects, rebuilt when a source or header is newer),
# fuzz-NAME (the programs), corpus-NAME/ (kept between runs: it grows),
# artifacts-NAME/ (emptied before each run; a crash-*, leak-*, timeout-*,
# oom-* or slow-unit-* file there is an input that failed) and NAME.log.
# Needs clang with the libFuzzer runtime (Debian: clang, libclang-rt-14-dev;
# t/setup-deps.sh installs them).
set -u
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=$(cd "${top_builddir:-$srcdir}" && pwd)
out=${FUZZ_DIR:-$builddir/t/tmp/fuzz}
CC_FUZZ=${CC_FUZZ:-clang}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

die() { echo "run.sh: $*" >&2; exit 2; }

targets() {
	local f
	for f in "$srcdir"/t/fuzz/fuzz-*.c; do
		f=${f##*/fuzz-}
		echo "${f%.c}"
	done
}

# The libraries the gateway links, from pkg-config where they have a .pc.
libs() {
	local db=-ldb f
	# Berkeley DB 5.3 as configure finds it (Debian: libdb-5.3.so).
	for f in /usr/lib/libdb-5.3.so /usr/lib/*/libdb-5.3.so; do
		[ -e "$f" ] && db=-ldb-5.3
	done
	echo "$(pkg-config --libs json-c libcurl inih libcrypto) -lfcgi $db -lm -lpthread"
}

# FLAGS: the compiler flags of the gateway's sources and the targets.
read -r -a FLAGS <<<"-g -O1 $SAN $(pkg-config --cflags json-c libcurl inih libcrypto 2>/dev/null)"
FLAGS+=(-DPACKAGE_VERSION='"fuzz"' -DSYSCONFDIR='"/etc"')

# stale OBJ SRC: true if OBJ is missing or older than SRC or a header.
stale() {
	local f
	[ -e "$1" ] || return 0
	for f in "$2" "$srcdir"/src/*.h; do
		[ "$f" -nt "$1" ] && return 0
	done
	return 1
}

# compile C O: one instrumented object (written whole or not at all).
compile() {
	"$CC_FUZZ" -fsanitize=fuzzer-no-link "${FLAGS[@]}" -c "$1" -o "$2.tmp" &&
	    mv "$2.tmp" "$2"
}

build() {
	local c o objs=() t jobs=0 failed=0
	command -v "$CC_FUZZ" >/dev/null || die "$CC_FUZZ not found (t/setup-deps.sh installs clang)"
	mkdir -p "$out/obj" || die "cannot create $out/obj"
	for c in "$srcdir"/src/*.c; do
		case ${c##*/} in main.c|admin.c|admin-*.c) continue ;; esac
		o=$out/obj/$(basename "$c" .c).o
		objs+=("$o")
		stale "$o" "$c" || continue
		if [ "$jobs" -ge "${FUZZ_JOBS:-2}" ]; then
			wait -n || failed=1
			jobs=$((jobs - 1))
		fi
		compile "$c" "$o" &
		jobs=$((jobs + 1))
	done
	for ((; jobs > 0; jobs--)); do
		wait -n || failed=1
	done
	[ "$failed" -eq 0 ] || die "compiling the gateway's sources failed"
	for t in $(targets); do
		# shellcheck disable=SC2046  # one word per library
		"$CC_FUZZ" -fsanitize=fuzzer "${FLAGS[@]}" -I"$srcdir/src" \
		    "$srcdir/t/fuzz/fuzz-$t.c" "${objs[@]}" $(libs) \
		    -o "$out/fuzz-$t.tmp" && mv "$out/fuzz-$t.tmp" "$out/fuzz-$t" ||
		    die "linking fuzz-$t failed"
		mkdir -p "$out/corpus-$t"
	done
	# Seeds: the inputs earlier runs found (seeds.tar.gz, a merged minimal
	# corpus per target: a short run from there covers more than a long
	# one from the fixtures alone), and the fixtures of the unit tests.
	tar -xzf "$srcdir/t/fuzz/seeds.tar.gz" -C "$out" ||
	    die "cannot unpack $srcdir/t/fuzz/seeds.tar.gz"
	cp "$srcdir"/t/data/unit/*.sse "$out/corpus-sse/" 2>/dev/null
	cp "$srcdir"/t/data/unit/*.json "$out/corpus-request/" 2>/dev/null
	echo '{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}' \
	    >"$out/corpus-request/seed.json"
	seed_provider
	return 0
}

# seed_provider: the adapter fixtures for fuzz-provider, each behind the
# byte that picks its adapter (openai 0, anthropic 1, gemini 2, gigachat 3,
# yandex 4) and feed (request 0, response 1, stream 2, error 3): adapter +
# 5 * feed; + 120 asks for usage in streams.
seed_provider() {
	local dir=$out/corpus-provider f a feed name i=0
	mkdir -p "$dir"
	for f in "$srcdir"/t/data/*/* "$srcdir"/t/data/unit/*; do
		case $f in
		*/anthropic/*|*/unit/anthropic-*) a=1 ;;
		*/gemini/*|*/unit/gemini-*) a=2 ;;
		*/gigachat/*) a=3 ;;
		*/yandex/*) a=4 ;;
		*/unit/*) a=0 ;;
		*) continue ;;
		esac
		name=${f##*/}
		case $name in
		request_full.openai.json) feed=0 ;;
		request*|oauth*) continue ;;
		error*|*error-*) feed=3 ;;
		stream*|*-stream*) feed=2 ;;
		*) feed=1 ;;
		esac
		i=$((i + 1))
		{ printf "\\$(printf %03o $((a + 5 * feed)))"; cat "$f"; } >"$dir/seed-$i"
		[ "$feed" -ne 2 ] ||
		    { printf "\\$(printf %03o $((a + 5 * feed + 120)))"; cat "$f"; } >"$dir/seed-$i-usage"
	done
}

# run NAME SECONDS: one bounded run; 0 when it ended cleanly and left no
# artifact, else 1 with the artifacts named on stderr.
run() {
	local t=$1 secs=$2 rc a found=0
	[ -x "$out/fuzz-$t" ] || die "$out/fuzz-$t is missing: run.sh build"
	rm -rf "$out/artifacts-$t"
	mkdir -p "$out/artifacts-$t" "$out/corpus-$t"
	# -timeout: one input taking 25 s is a hang even on a loaded machine.
	# halt_on_error/abort_on_error: every sanitizer report ends the run
	# with an artifact.
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1} \
	    "$out/fuzz-$t" -max_total_time="$secs" -max_len=8192 -timeout=25 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$out/artifacts-$t/" "$out/corpus-$t" >"$out/$t.log" 2>&1
	rc=$?
	for a in "$out/artifacts-$t"/*; do
		[ -e "$a" ] || continue
		echo "fuzz-$t: artifact $a" >&2
		found=1
	done
	if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
		echo "fuzz-$t: exit $rc; log $out/$t.log" >&2
		return 1
	fi
	return 0
}

case ${1:-60} in
build)	build >&2 || exit 2
	targets ;;
run)	[ $# -eq 3 ] || die "usage: run.sh run NAME SECONDS"
	run "$2" "$3" ;;
*[!0-9]*) die "usage: run.sh [SECONDS] | build | run NAME SECONDS" ;;
*)	build || exit 2
	bad=0
	for t in $(targets); do
		echo "fuzz-$t: ${1:-60}s"
		run "$t" "${1:-60}" || bad=1
		grep -E '^(stat::number_of_executed_units|Done )' "$out/$t.log" | tail -n 1
	done
	exit "$bad" ;;
esac
