#!/bin/bash
# rcache.sh: the response cache's figure. wrk against llmgate behind
# lighttpd (the shipped config) in front of the fast local upstream of
# bench.sh (nginx answering a fixed completion), a client key with
# accounting on, three runs of the same temperature-0 chat request:
#   upstream  model "bench" without cache_ttl: every request goes upstream
#   hit       model "benchc" (cache_ttl = 3600): after one miss, every
#             request is served from the cache (no upstream call)
#   store     "benchc" with a new prompt per request: every request a miss
#             that goes upstream and then stores its answer
#
#   contrib/bench/rcache.sh [SECONDS] [CONNECTIONS]
#
# Not a test: the figures depend on the machine. The upstream here answers
# in well under a millisecond; a real provider takes 0.3 to 30 s, which a
# hit saves entirely.
set -u
DURATION=${1:-10}
CONNS=${2:-16}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../t/lib.sh"
. "$here/common.sh"

command -v wrk >/dev/null || bail "wrk is not installed (t/setup-deps.sh)"
setup_tmp
B=$TMPDIR_T/bench
mkdir -p "$B"
upstream_nginx "$B/nginx" "	keepalive_requests 1000000;" '		location / {
			default_type application/json;
			return 200 '"'"'{"id":"chatcmpl-bench","object":"chat.completion","created":0,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}'"'"';
		}'
wait_until 10 curl -sf -o /dev/null -X POST "http://127.0.0.1:$UP_PORT/v1/chat/completions" ||
    bail "upstream nginx did not start"

export LLMGATE_MASTER_KEY=sk-bench-master
CONF=$TMPDIR_T/bench.ini
bench_ini "$CONF" on "${BENCH_LOG_LEVEL:-info}"
cat >>"$CONF" <<EOF

[model benchc]
provider = fast
upstream = bench
input_price = 1.00
output_price = 2.00
rpm = 0
cache_ttl = 3600
EOF
ADMIN_CONF=$CONF

lua() {	# MODEL UNIQUE: the wrk script (UNIQUE=1: a new prompt per request)
	cat >"$B/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
local n = 0
local id = tostring(math.random(1, 1000000000))
request = function()
	local text = "Say ok"
	if $2 == 1 then
		n = n + 1
		text = "Say ok " .. id .. " " .. n
	end
	return wrk.format(nil, nil, nil, '{"model":"$1","temperature":0,"max_tokens":16,"messages":[{"role":"user","content":"' .. text .. '"}]}')
end
EOF
}

run() {	# LABEL MODEL UNIQUE
	local out rps p50 p99
	lua "$2" "$3"
	curl -sf -o /dev/null -H 'Content-Type: application/json' \
	    -H "Authorization: Bearer $KEY" \
	    --data-binary "{\"model\":\"$2\",\"temperature\":0,\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"Say ok\"}]}" \
	    "$GW_URL/v1/chat/completions" || bail "$1: warm-up request failed"
	wrk -t2 -c"$CONNS" -d2s -s "$B/post.lua" "$GW_URL/v1/chat/completions" >/dev/null
	out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$B/post.lua" \
	    "$GW_URL/v1/chat/completions")
	echo "$out" >"$B/$1.wrk"
	grep -q 'Non-2xx' <<<"$out" && diag "$1: some responses were not 2xx"
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	printf '%-9s %9s req/s  p50 %-7s p99 %-7s\n' "$1" "$rps" "$p50" "$p99"
	eval "RPS_$1=\$rps"
}

echo "wrk -t2 -c$CONNS -d${DURATION}s, lighttpd + contrib/lighttpd/llmgate.conf, a client key, $(nproc) cores"
start_lighttpd "$CONF"
create_key KEY --name bench --daily-budget 100000 >/dev/null ||
    bail "cannot create the bench key"
run upstream bench 0
run hit benchc 0
run store benchc 1
hits=$(grep -c 'cache_hit=1' "$SERVER_LOG" 2>/dev/null || echo '?')
stop_server
echo "usage lines with cache_hit=1: $hits"
python3 -c "print('served from the cache: %.2fx the requests per second served upstream' % ($RPS_hit / $RPS_upstream))"
python3 -c "print('a miss that stores its answer: %.0f%% of the throughput without a cache' % (100.0 * $RPS_store / $RPS_upstream))"
done_testing >/dev/null
