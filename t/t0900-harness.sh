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

scenarios() {
	local k=$SERVER_KIND out spread lead

	is "$(curl -sS -o /dev/null -w '%{http_code}' "$GW_URL/health")" 200 "$k: GET /health 200"
	like "$(curl -sS "$GW_URL/health")" '"status":"ok"' "$k: /health body"

	# The static dashboard is served at / by the server itself.
	is "$(curl -sS -o /dev/null -w '%{http_code}' "$GW_URL/")" 200 "$k: GET / (dashboard) 200"

	# The Authorization header reaches the gateway: no key is refused, the
	# master key is accepted.
	is "$(curl -sS -o /dev/null -w '%{http_code}' "$GW_URL/v1/models")" 401 "$k: no key -> 401"
	is "$(gw_curl -o /dev/null -w '%{http_code}' "$GW_URL/v1/models")" 200 "$k: master key -> 200"

	# Streaming: content events must reach the client as the mock sends
	# them (4 chunks 0.4 s apart, 1.2 s from the first to the last), not
	# in one piece at the end. Timed by t/sse-client.py as it reads the
	# socket, against the mock's own send times: the first content event
	# must arrive before the mock starts writing its last event ([DONE],
	# 2.4 s after the first content event); and the content events must
	# arrive spread over at least half their spacing.
	mock_clear
	out=$(gw_sse -H 'Content-Type: application/json' -d "$BODY" "$GW_URL/v1/chat/completions")
	like "$(tail -n 1 <<<"$out")" '^[0-9.]+ data: \[DONE\]$' "$k: stream ends with data: [DONE]"
	is "$(grep -c '"content":"tok' <<<"$out")" 4 "$k: 4 content events"
	ok_streamed "$k" "$out" 0.6
	read -r _ spread lead <<<"$(stream_timing "$out")"
	diag "$k: content events spread ${spread}s, first ${lead}s ahead of the last send"
}

for_each_server "$CONF" scenarios

done_testing
