#!/bin/bash
# bench.sh: wrk against llmgate behind lighttpd (the shipped contrib config,
# --threads 1024) in front of a fast local upstream (nginx answering a fixed
# chat completion), beside the same wrk against a bare libfcgi responder
# behind the same lighttpd. Reports req/s, p50/p99 latency and worker RSS.
# The gateway runs three ways: accounting off (no store, master key), the
# master key with accounting on (one settle transaction per request), and
# a client key (key lookup, admission and settlement: two transactions).
#
#   make bench            (or: contrib/bench/bench.sh [SECONDS] [CONNECTIONS])
#
# Not a test: the figures depend on the machine. Run it on an idle machine.
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

# The baseline responder, built here so the bench needs no configure step.
cc -O2 -o "$B/bare-responder" "$here/bare-responder.c" -lfcgi -lpthread ||
    bail "cannot build bare-responder.c"
chmod 0755 "$B" "$B/bare-responder"

# A fast upstream: nginx answering every POST with a fixed completion.
upstream_nginx "$B/nginx" "	keepalive_requests 1000000;" '		location / {
			default_type application/json;
			return 200 '"'"'{"id":"chatcmpl-bench","object":"chat.completion","created":0,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}'"'"';
		}'
wait_until 10 curl -sf -o /dev/null -X POST "http://127.0.0.1:$UP_PORT/v1/chat/completions" ||
    bail "upstream nginx did not start"

export LLMGATE_MASTER_KEY=sk-bench-master
CONF=$TMPDIR_T/bench.ini
OFF_CONF=$TMPDIR_T/bench-off.ini
bench_ini "$CONF" on "${BENCH_LOG_LEVEL:-info}"
bench_ini "$OFF_CONF" off "${BENCH_LOG_LEVEL:-info}"
ADMIN_CONF=$CONF

post_lua() {	# KEY: the wrk script sending one chat request with that key
	cat >"$B/post.lua" <<EOF2
wrk.method = "POST"
wrk.body = '{"model":"bench","max_tokens":16,"messages":[{"role":"user","content":"Say ok"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $1"
EOF2
}

responder_mem() {	# "RSS PSS PRIVATE_DIRTY" in kB of the FastCGI program
	local p exe
	for p in $(_descendants "${_server_pids[-1]}"); do
		exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		case $exe in
		*/llmgate|*/bare-responder)
			awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} /^Private_Dirty:/ {d=$2}
			    END {print r, p, d}' "/proc/$p/smaps_rollup";;
		esac
	done | head -n 1
}

run() {		# label -> one result line
	local label=$1 out rps p50 p99 rss
	curl -sf -o /dev/null -H 'Content-Type: application/json' \
	    -H "Authorization: Bearer $KEY" --data-binary '{"model":"bench","messages":[{"role":"user","content":"x"}]}' \
	    "$GW_URL/v1/chat/completions" || bail "$label: warm-up request failed"
	wrk -t2 -c"$CONNS" -d2s -s "$B/post.lua" "$GW_URL/v1/chat/completions" >/dev/null
	out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$B/post.lua" \
	    "$GW_URL/v1/chat/completions")
	echo "$out" >"$B/$label.wrk"
	grep -q 'Non-2xx' <<<"$out" && diag "$label: some responses were not 2xx"
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	read -r rss pss dirty <<<"$(responder_mem)"
	printf '%-8s %9s req/s  p50 %-7s p99 %-7s RSS %5s kB  PSS %5s kB  private dirty %5s kB\n' \
	    "$label" "$rps" "$p50" "$p99" "$rss" "$pss" "$dirty"
	eval "RPS_$label=\$rps"
}

echo "wrk -t2 -c$CONNS -d${DURATION}s, lighttpd + contrib/lighttpd/llmgate.conf (--threads 1024), $(nproc) cores"
KEY=$LLMGATE_MASTER_KEY
post_lua "$KEY"
start_lighttpd "$OFF_CONF"
run off
stop_server
start_lighttpd "$CONF"
run master
create_key KEY --name bench --daily-budget 100000 >/dev/null ||
    bail "cannot create the bench key"
post_lua "$KEY"
run key
stop_server
KEY=$LLMGATE_MASTER_KEY
post_lua "$KEY"
LLMGATE=$B/bare-responder start_lighttpd "$OFF_CONF"
run bare
stop_server
# The policy step: a 1 KB prompt with personal data in it (every span
# detector, the injection score, redaction), accounting off, the master
# key as agent "guarded" (policy all) or not.
python3 - "$B/pii.lua" <<'PYEOF'
import json, sys
text = ("Клиент Иван Петров, ivan.petrov@example.ru, тел. +7 (912) 345-67-89, "
        "карта 4111 1111 1111 1111, СНИЛС 112-233-445 95. Please summarise the "
        "customer's complaint about the late delivery of order 5521 and draft a polite "
        "answer in Russian; mention the refund policy and the new delivery date. ")
while len(text.encode()) < 1024:
    text += "The parcel was expected on Monday but arrived on Thursday. "
body = json.dumps({"model": "bench", "max_tokens": 16,
                   "messages": [{"role": "user", "content": text}]}, ensure_ascii=False)
with open(sys.argv[1], "w") as f:
    f.write('wrk.method = "POST"\n')
    f.write("wrk.body = %s\n" % json.dumps(body, ensure_ascii=False))
    f.write('wrk.headers["Content-Type"] = "application/json"\n')
    f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % "sk-bench-master")
PYEOF
bench_policy_ini "$OFF_CONF"
start_lighttpd "$OFF_CONF"
cp "$B/pii.lua" "$B/post.lua"
run pii
echo 'wrk.headers["X-Agent"] = "guarded"' >>"$B/post.lua"
run policy
stop_server
python3 -c "print('a policy with every detector on (1 KB prompt with personal data) keeps %.0f%% of the throughput without' % (100.0 * $RPS_policy / $RPS_pii))"
python3 -c "print('accounting off reaches %.0f%% of the bare FastCGI throughput' % (100.0 * $RPS_off / $RPS_bare))"
python3 -c "print('a client key with accounting (2 transactions per request) keeps %.0f%% of the throughput with accounting off' % (100.0 * $RPS_key / $RPS_off))"
python3 -c "print('the master key with accounting (1 transaction) keeps %.0f%%' % (100.0 * $RPS_master / $RPS_off))"
done_testing >/dev/null	# lib.sh: a clean end, no TAP plan on the report
