#!/bin/bash
# t0900-harness.sh: every front end the harness starts (lighttpd, Apache
# mod_fcgid, nginx + spawn-fcgi, Apache CGI) comes up from the shipped
# contrib configs, answers /health, passes the Authorization header, and
# streams SSE events as they are produced (no server buffers them).
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=sk-mock-harness
export LLMGATE_MASTER_KEY=sk-master-harness
CONF=$TMPDIR_T/llmgate.ini
write_basic_config "$CONF"

BODY='{"model":"mock-ok","stream":true,"messages":[{"role":"user","content":"hi MOCK{chunks=4,delay=0.4}"}]}'

# stream_times: POST the streamed chat and print one line per SSE data line:
# "<seconds since the request began> <line>".
stream_times() {
	gw_curl -N -H 'Content-Type: application/json' --data-binary "$BODY" \
	    "$GW_URL/v1/chat/completions" | python3 -c '
import sys, time
t0 = time.monotonic()
for line in sys.stdin:
    if line.startswith("data:"):
        print("%.3f %s" % (time.monotonic() - t0, line.rstrip("\r\n")), flush=True)'
}

scenarios() {
	local k=$SERVER_KIND out first last spread

	is "$(curl -sS -o /dev/null -w '%{http_code}' "$GW_URL/health")" 200 "$k: GET /health 200"
	like "$(curl -sS "$GW_URL/health")" '"status":"ok"' "$k: /health body"

	# The static dashboard is served at / by the server itself.
	is "$(curl -sS -o /dev/null -w '%{http_code}' "$GW_URL/")" 200 "$k: GET / (dashboard) 200"

	# The Authorization header reaches the gateway: no key is refused, the
	# master key is accepted.
	is "$(curl -sS -o /dev/null -w '%{http_code}' "$GW_URL/v1/models")" 401 "$k: no key -> 401"
	is "$(gw_curl -o /dev/null -w '%{http_code}' "$GW_URL/v1/models")" 200 "$k: master key -> 200"

	# Streaming: content events must be spread over time as the mock sends
	# them (4 chunks 0.4 s apart), not delivered in one piece at the end.
	out=$(stream_times)
	like "$(tail -n 1 <<<"$out")" '^[0-9.]+ data: \[DONE\]$' "$k: stream ends with data: [DONE]"
	first=$(grep -m1 '"content":"tok' <<<"$out" | cut -d' ' -f1)
	last=$(grep '"content":"tok' <<<"$out" | tail -n 1 | cut -d' ' -f1)
	is "$(grep -c '"content":"tok' <<<"$out")" 4 "$k: 4 content events"
	spread=$(python3 -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' \
	    "${first:-0}" "${last:-0}")
	ok "$k: last content event ${spread}s after the first (>= 1.0 s: not buffered)" \
	    python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 1.0)' "$spread" ||
	    diag "arrival times:" "$out"
}

for_each_server "$CONF" scenarios

done_testing
