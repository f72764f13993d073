#!/bin/bash
# streams.sh: N concurrent streams through llmgate behind lighttpd with the
# shipped contrib/lighttpd/llmgate.conf, for N = 10, 100, 1000 (or
# $BENCH_STREAMS), each a chat stream of $BENCH_EVENTS events (default 30)
# $BENCH_INTERVAL ms apart (100) after a first byte $BENCH_FIRST ms (100)
# after the request: about 3.1 s.
#
# Both ends are contrib/bench/streambench.c, one epoll loop each (built
# here), so that neither is the bottleneck: the upstream holds thousands of
# streams (t/mock-upstream.py, a Python thread per stream, tops out at a
# few hundred), and the client opens all N connections at once and takes
# its times at recv(). Every stream uses a client key with accounting on
# (key lookup, reservation and settlement in the store).
#
# Per N it prints: 200s out of N; the wall time against one stream plus
# the client's own start-up (opening N connections); the time to first
# byte the gateway adds (TTFB at the client minus the upstream's own
# first-byte delay), p50 and p99; and the gateway's peak total RSS (the sum
# over its processes, sampled every 0.2 s) and peak thread count. The
# "direct" row is the same client against the upstream alone: what the
# harness itself adds.
#
#   make bench   (runs bench.sh, then this)
#   contrib/bench/streams.sh
#
# Not a test: the figures depend on the machine and its load.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../t/lib.sh"
. "$here/common.sh"

NS=${BENCH_STREAMS:-10 100 1000}
AUTH=${BENCH_AUTH:-key}		# key: a client key; master; off: accounting off
RAMP=${BENCH_RAMP:-0}		# ms over which the N streams start (0: at once)
SERVER=${BENCH_SERVER:-lighttpd}	# or apache (mod_fcgid), nginx (spawn-fcgi)
# BENCH_GATEWAY: more [gateway] lines, e.g. "workers_spare = 1"
EVENTS=${BENCH_EVENTS:-30}
INTERVAL=${BENCH_INTERVAL:-100}
FIRST=${BENCH_FIRST:-100}

setup_tmp
B=$TMPDIR_T/bench
mkdir -p "$B"
cc -O2 -o "$B/streambench" "$here/streambench.c" ||
    bail "cannot build streambench.c"

_spawn "$B/upstream.log" "$B/streambench" upstream "$B/up.port" \
    "$EVENTS" "$INTERVAL" "$FIRST"
wait_until 10 test -s "$B/up.port" || bail "the bench upstream did not start"
UP_PORT=$(cat "$B/up.port")

export LLMGATE_MASTER_KEY=sk-bench-master
CONF=$TMPDIR_T/llmgate.ini
bench_ini "$CONF" "$([ "$AUTH" = off ] && echo off || echo on)" \
    "${BENCH_LOG_LEVEL:-warn}" "${BENCH_GATEWAY:-}"
printf '%s' '{"model":"bench","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"Say ok"}]}' \
    >"$B/body.json"

"start_$SERVER" "$CONF"
KEY=$LLMGATE_MASTER_KEY
[ "$AUTH" != key ] ||
    create_key KEY --name bench --daily-budget 100000 >/dev/null ||
    bail "cannot create the bench key"

gw_pids() {	# the gateway processes (spawn-fcgi -n execs the gateway itself)
	local p exe
	exe=$(readlink -f "$LLMGATE")
	for p in "${_server_pids[@]}"; do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" != "$exe" ] || echo "$p"
	done
	gw_worker_pids
}

# sample_gateway OUT: until killed, write "peak-RSS-kB peak-PSS-kB
# peak-threads peak-processes" of the gateway's processes (sums over
# them) to OUT every 0.2 s. PSS shares each shared page among the
# processes that map it: with many processes the sum of RSS counts the
# libraries and the store's regions once per process.
sample_gateway() {
	local out=$1 rss=0 pss=0 thr=0 procs=0 r s t n p
	while :; do
		r=0 s=0 t=0 n=0
		for p in $(gw_pids); do
			read -r a b < <(awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} END {print r+0, p+0}' "/proc/$p/smaps_rollup" 2>/dev/null)
			r=$((r + ${a:-0})) s=$((s + ${b:-0})) n=$((n + 1))
			t=$((t + $(ls "/proc/$p/task" 2>/dev/null | wc -l)))
		done
		[ "$r" -le "$rss" ] || rss=$r
		[ "$s" -le "$pss" ] || pss=$s
		[ "$t" -le "$thr" ] || thr=$t
		[ "$n" -le "$procs" ] || procs=$n
		echo "$rss $pss $thr $procs" >"$out.tmp" && mv "$out.tmp" "$out"
		sleep 0.2
	done
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# One stream alone, through the gateway: the time one stream takes.
"$B/streambench" client "$GW_PORT" 1 /v1/chat/completions "$B/body.json" "$KEY" >/dev/null
one=$("$B/streambench" client "$GW_PORT" 1 /v1/chat/completions "$B/body.json" "$KEY")
ONE_MS=$(field total_p50 "$one")

case $SERVER in
lighttpd) echo "lighttpd + contrib/lighttpd/llmgate.conf ($(sed -n 's/.*"bin-path" *=> *"[^ ]*\(.*\)",/\1/p' "$top_srcdir/contrib/lighttpd/llmgate.conf")), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," ;;
*) echo "$SERVER with the shipped contrib files, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," ;;
esac
echo "streams of $EVENTS events ${INTERVAL} ms apart, upstream first byte after ${FIRST} ms; one stream alone: ${ONE_MS} ms"
echo "auth: $AUTH (key: a client key, accounting on; master: the master key; off: accounting off); the N streams start $([ "$RAMP" = 0 ] && echo "at once" || echo "over $RAMP ms")"
printf '%-7s %5s %9s %8s %11s %8s %8s %7s %7s %7s %5s\n' \
    N 200s wall_ms start_ms 'wall/(1+st)' add_p50 add_p99 RSS_MB PSS_MB threads procs
for n in $NS; do
	for via in direct gateway; do
		port=$GW_PORT path=/v1/chat/completions
		[ "$via" = gateway ] || port=$UP_PORT
		rm -f "$B/sample"
		if [ "$via" = gateway ]; then
			sample_gateway "$B/sample" &
			sampler=$!
		fi
		res=$("$B/streambench" client "$port" "$n" "$path" "$B/body.json" \
		    "$KEY" "${BENCH_TIMEOUT:-300}" "$RAMP")
		rss=- pss=- thr=- procs=-
		if [ "$via" = gateway ]; then
			kill "$sampler"
			wait "$sampler" 2>/dev/null
			[ -s "$B/sample" ] || echo "0 0 0 0" >"$B/sample"
			read -r rss pss thr procs <"$B/sample"
			rss=$((rss / 1024)) pss=$((pss / 1024))
		fi
		python3 - "$via" "$n" "$res" "$ONE_MS" "$FIRST" "$rss" "$pss" "$thr" "$procs" <<'EOF'
import sys
via, n, res, one, first, rss, pss, thr, procs = sys.argv[1:]
f = dict(kv.split("=") for kv in res.split())
wall, st = float(f["wall_ms"]), float(f["startup_ms"])
add = lambda k: "%.1f" % (float(f[k]) - float(first)) if float(f[k]) >= 0 else "-"
label = n if via == "gateway" else "  direct"
print("%-7s %5s %9.0f %8.0f %11.2f %8s %8s %7s %7s %7s %5s" % (label, f["ok"], wall, st,
      wall / (float(one) + st), add("ttfb_p50"), add("ttfb_p99"), rss, pss, thr, procs))
EOF
	done
done
diag "gateway log: $SERVER_LOG"
grep -iE 'error|warn' "$SERVER_LOG" | sort | uniq -c | sort -rn | head -n 5 |
    while IFS= read -r l; do diag "$l"; done
done_testing >/dev/null	# lib.sh: a clean end, no TAP plan on the report
