#!/bin/bash
# t0410-workers.sh: the elastic worker pool behind the shipped lighttpd config
# and the nginx + spawn-fcgi unit (--threads 1024, workers_spare 1 here).
#
#  - A burst of 64 streams: every one reaches the upstream before any of
#    them ends (the mock's log: when it began each request, when it ended
#    each stream), so none waited for another's thread; a fixed pool of 4
#    would start the fifth only after a stream ended.
#  - /health answers while the 64 streams hold their workers.
#  - The pool grows to 64 busy + 1 spare, then shrinks back to
#    workers_spare after workers_idle_timeout (threads named llmgate-worker
#    in /proc/PID/task, polled).
#  - workers_max caps it: 20 streams against workers_max 8 never have more
#    than 8 workers nor 8 upstream streams at once, and all 20 complete.
#  - A body nested as deep as max_json_depth allows (1000) runs on the
#    small worker stacks without harm.
#
# The client is contrib/bench/streambench.c (one process, epoll): 64
# interpreters would load a 2-core machine more than the servers do.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=sk-mock-upstream-secret LLMGATE_MASTER_KEY=sk-master-t0410
SB=$TMPDIR_T/streambench
cc -O2 -o "$SB" "$top_srcdir/contrib/bench/streambench.c" ||
    bail "cannot build contrib/bench/streambench.c"
N=64

CONF=$TMPDIR_T/llmgate.ini
write_basic_config "$CONF"
sed -i 's/^max_body = 65536$/max_body = 1048576\nmax_json_depth = 1000\nworkers_spare = 1\nworkers_idle_timeout = 2/' "$CONF"
CAPPED=$TMPDIR_T/capped.ini
sed 's/^workers_spare = 1$/workers_spare = 2\nworkers_max = 8/' "$CONF" >"$CAPPED"

stream_body() {	# FILE CHUNKS: a streamed chat request, CHUNKS events 0.5 s apart
	printf '{"model":"mock-ok","stream":true,"messages":[{"role":"user","content":"MOCK{chunks=%d,delay=0.5}"}]}' \
	    "$2" >"$1"
}
stream_body "$TMPDIR_T/long.json" 12	# 6 s
stream_body "$TMPDIR_T/short.json" 4	# 2 s

gw_pids() {	# gw_worker_pids, and the server's own pid when it is the gateway
	local p exe	# (spawn-fcgi -n execs it)
	exe=$(readlink -f "$LLMGATE")
	for p in "${_server_pids[@]}"; do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" != "$exe" ] || echo "$p"
	done
	gw_worker_pids
}
gw_pid() { gw_pids | head -n 1; }
workers() {	# PID: its threads named llmgate-worker
	grep -lx llmgate-worker /proc/"$1"/task/*/comm 2>/dev/null | wc -l
}
workers_are() { [ "$(workers "$1")" -eq "$2" ]; }
mock_has() {	# N: the mock has begun N requests
	[ "$(mock_log | jx 'len(d["log"])')" -ge "$1" ]
}
# mock_spans: "REQUESTS 200S LAST-BEGUN FIRST-ENDED MOST-AT-ONCE" of the
# mock's log (times: the wall clock, as the mock took them).
mock_spans() {
	mock_log | python3 -c '
import json, sys
log = json.load(sys.stdin)["log"]
ends = [e["t_end"] for e in log if e.get("t_end")]
ev = sorted([(e["t"], 1) for e in log] + [(t, -1) for t in ends])
cur = most = 0
for _, d in ev:
    cur += d
    most = max(most, cur)
print(len(log), sum(1 for e in log if e.get("done")),
      "%.6f" % max(e["t"] for e in log), "%.6f" % (min(ends) if ends else 0), most)'
}

burst() {
	local pid n ok last first most health_t code peak summary
	pid=$(gw_pid)
	is "$(gw_pids | wc -l)" 1 "$SERVER_KIND: one gateway process"
	mock_clear
	"$SB" client "$GW_PORT" "$N" /v1/chat/completions "$TMPDIR_T/long.json" \
	    "$LLMGATE_MASTER_KEY" 60 >"$TMPDIR_T/burst.out" &
	local client=$!
	ok "$SERVER_KIND: the mock began all $N streams" wait_until 30 mock_has "$N"
	code=$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$GW_URL/health")
	health_t=$EPOCHREALTIME	# after the answer came: no earlier than it
	peak=$(workers "$pid")
	wait "$client"
	summary=$(cat "$TMPDIR_T/burst.out")
	like "$summary" "^n=$N ok=$N " "$SERVER_KIND: $N streams, all 200 ($summary)"
	read -r n ok last first most <<<"$(mock_spans)"
	is "$n $ok" "$N $N" "$SERVER_KIND: the mock served $N complete streams"
	ok "$SERVER_KIND: every stream began upstream before any ended (the last began $(python3 -c "print('%.2f' % ($first - $last))") s before the first ended)" \
	    python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))' "$last" "$first"
	is "$code" 200 "$SERVER_KIND: /health answers while $N streams hold their workers"
	ok "$SERVER_KIND: ... and before the first stream ended" \
	    python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))' "$health_t" "$first"
	ok "$SERVER_KIND: $N busy workers and the spare one (got $peak)" test "$peak" -ge $((N + 1))
	ok "$SERVER_KIND: idle workers shrink back to workers_spare (1) after workers_idle_timeout" \
	    wait_until 30 workers_are "$pid" 1
	is "$(gw_pid)" "$pid" "$SERVER_KIND: the same process throughout"
}

deep() {	# N: a JSON array nested N deep
	python3 -c 'import sys; n = int(sys.argv[1]); print("[" * n + "]" * n)' "$1"
}

deep_body() {
	local pid code
	pid=$(gw_pid)
	# The gateway parses, validates and re-encodes it for the upstream
	# (the mock's own parser may give up on it: 502 then).
	code=$(gw_curl -o "$TMPDIR_T/deep.out" -w '%{http_code}' -H 'Content-Type: application/json' \
	    --data-binary "{\"model\":\"mock-ok\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"x\":$(deep 995)}}}}" \
	    "$GW_URL/v1/chat/completions")
	like "$code" '^(200|502)$' "$SERVER_KIND: a body nested 997 deep is served (got $code)"
	code=$(gw_curl -o "$TMPDIR_T/deep.out" -w '%{http_code}' -H 'Content-Type: application/json' \
	    --data-binary "{\"model\":\"mock-ok\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"x\":$(deep 1001)}" \
	    "$GW_URL/v1/chat/completions")
	is "$code" 400 "$SERVER_KIND: one nested deeper than max_json_depth is refused"
	like "$(cat "$TMPDIR_T/deep.out")" '"code":"invalid_json"' "$SERVER_KIND: ... as invalid_json"
	is "$(gw_pid)" "$pid" "$SERVER_KIND: the process lived through both"
}

capped() {
	local pid peak=0 w n ok last first most
	pid=$(gw_pid)
	mock_clear
	"$SB" client "$GW_PORT" 20 /v1/chat/completions "$TMPDIR_T/short.json" \
	    "$LLMGATE_MASTER_KEY" 60 >"$TMPDIR_T/capped.out" &
	local client=$!
	while kill -0 "$client" 2>/dev/null; do
		w=$(workers "$pid")
		[ "$w" -le "$peak" ] || peak=$w
		sleep 0.1
	done
	wait "$client"
	like "$(cat "$TMPDIR_T/capped.out")" '^n=20 ok=20 ' "workers_max 8: 20 streams, all 200 in the end"
	read -r n ok last first most <<<"$(mock_spans)"
	is "$ok" 20 "workers_max 8: the mock served 20 complete streams"
	is "$most" 8 "workers_max 8: 8 upstream streams at once at most, and 8 reached"
	ok "workers_max 8: never more than 8 workers (seen $peak)" test "$peak" -le 8
	like "$(cat "$SERVER_LOG")" 'all 8 workers are busy' "workers_max 8: the log says requests wait"
	stop_server
	like "$(grep 'workers gone' "$SERVER_LOG" | tail -n 1)" 'at most [1-8] at once' \
	    "workers_max 8: the process says at exit that it never had more"
}

start_lighttpd "$CONF"
deep_body
burst
stop_server
start_nginx "$CONF"
burst
stop_server
start_lighttpd "$CAPPED"
capped
done_testing
