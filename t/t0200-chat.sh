#!/bin/bash
# t0200-chat.sh: chat, models, errors, retries, fallbacks and streaming
# through every front end (lighttpd, Apache mod_fcgid, nginx + spawn-fcgi,
# plain CGI) in front of the mock upstream.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock

export MOCK_API_KEY=sk-mock-upstream-secret
export LLMGATE_MASTER_KEY=sk-master-test-key
CONF=$TMPDIR_T/llmgate.ini

cat >"$CONF" <<EOF
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY
max_body = 65536
max_upstream_body = 65536
heartbeat = 1
default_provider = mock
; The same failing deployments serve many scenarios here, counting every
; attempt: circuit breakers (t0835) would cut the retries short.
breaker = off

[retry]
attempts = 2
backoff_ms = 50
backoff_max_ms = 200
retry_after_max = 5

[provider mock]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
match = mock*
header = X-Title: llmgate-test

[provider slow]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
first_byte_timeout = 1

[provider nokey]
type = openai
base_url = $MOCK_URL/v1
api_key = env:LLMGATE_TEST_UNSET_KEY

[provider dead]
type = openai
base_url = http://127.0.0.1:9/v1
api_key = none
connect_timeout = 500

; Egress through an HTTP proxy: the mock also acts as a forward proxy,
; so this unresolvable host is only reachable through it.
[provider proxied]
type = openai
base_url = http://upstream.invalid/v1
api_key = env:MOCK_API_KEY
proxy = $MOCK_URL

[model via-proxy]
provider = proxied
upstream = mock

[model huge]
provider = mock
upstream = mock@huge=100000

[model big]
provider = mock
upstream = mock@huge=50000

[model badkey]
provider = mock
upstream = mock@status=401

[model ratelimited]
provider = mock
upstream = mock@status=429,retry_after=2

[model ratelimited-chain]
provider = mock
upstream = mock@status=429,retry_after=2
fallback = chain-c

[model mock-ok]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00

[model chain-a]
provider = mock
upstream = mock@status=503
fallback = chain-b, chain-c

[model chain-b]
provider = mock
upstream = mock@status=502

[model chain-c]
provider = mock
upstream = mock@tag=c

[model flaky]
provider = mock
upstream = mock@status=503,times=1

[model patient]
provider = mock
upstream = mock@status=503,times=1,retry_after=1

[model bad-request]
provider = mock
upstream = mock@status=400
fallback = chain-c

[model all-fail]
provider = mock
upstream = mock@status=500
fallback = chain-b

[model slowpoke]
provider = slow
upstream = mock@first_byte_delay=6

[model unreachable]
provider = dead
upstream = whatever

[model keyless]
provider = nokey
upstream = mock

[model reset]
provider = mock
upstream = mock@reset=1

[model malformed]
provider = mock
upstream = mock@malformed=1

[model streamer]
provider = mock
upstream = mock@tag=stream
EOF

chat_body() {	# model [extra json members] [user text]
	printf '{"model":"%s",%s"messages":[{"role":"user","content":"%s"}]}' \
	    "$1" "${2:+$2,}" "${3:-hello}"
}

# POST a chat; sets BODY, STATUS and HDRS (header file).
post_chat() {
	HDRS=$TMPDIR_T/headers
	BODY=$(gw_curl -D "$HDRS" -o - -w '\n%{http_code}' \
	    -H 'Content-Type: application/json' \
	    --data-binary "$1" "$GW_URL/v1/chat/completions")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}

header() {	# name -> value from the last response
	tr -d '\r' <"$HDRS" | awk -v n="$(echo "$1" | tr A-Z a-z)" '
	    { split($0, a, ": "); if (tolower(a[1]) == n) v = substr($0, length(a[1]) + 3) }
	    END { print v }'
}

jget() {	# json path (python syntax after the object) from stdin
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1" 2>/dev/null
}

jexpr() {	# python expression over d (the JSON on stdin)
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null
}

mock_reset() { curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null; }
mock_stats() { curl -sS "$MOCK_URL/_mock/stats"; }
stream_aborted() {
	[ "$(mock_stats | jget '["aborted"].get("mock@tag=stream", 0)')" = 1 ]
}

scenarios() {
	local k=$SERVER_KIND t0 t1 out

	# Liveness and readiness need no key.
	is "$(curl -sS -o /dev/null -w '%{http_code}' "$GW_URL/health")" 200 "$k: /health 200"
	is "$(curl -sS -o /dev/null -w '%{http_code}' "$GW_URL/health/readiness")" 200 "$k: /health/readiness 200"

	# 401 without a key and with a wrong one, in the OpenAI shape.
	out=$(curl -sS -w '\n%{http_code}' "$GW_URL/v1/models")
	is "${out##*$'\n'}" 401 "$k: no key -> 401"
	is "$(echo "${out%$'\n'*}" | jget '["error"]["code"]')" missing_api_key "$k: 401 error code"
	out=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sk-wrong' "$GW_URL/v1/models")
	is "$out" 401 "$k: wrong key -> 401"

	# Models: only available ones, by id, and 404 for others.
	out=$(gw_curl "$GW_URL/v1/models")
	is "$(echo "$out" | jget '["object"]')" list "$k: /v1/models is a list"
	like "$(echo "$out" | jexpr '[m["id"] for m in d["data"]]')" "'mock-ok'" "$k: mock-ok listed"
	unlike "$out" keyless "$k: model of a provider without its key not listed"
	is "$(gw_curl -o /dev/null -w '%{http_code}' "$GW_URL/v1/models/mock-ok")" 200 "$k: /v1/models/mock-ok 200"
	is "$(gw_curl -o /dev/null -w '%{http_code}' "$GW_URL/v1/models/nope")" 404 "$k: unknown model id 404"
	out=$(gw_curl "$GW_URL/v1/providers")
	unlike "$out" "$MOCK_API_KEY" "$k: /v1/providers never shows a key"
	like "$out" '"name":"nokey","type":"openai".*"available":false' "$k: provider without key unavailable"

	# Non-streaming chat.
	mock_reset
	post_chat "$(chat_body mock-ok)"
	is "$STATUS" 200 "$k: chat 200"
	is "$(echo "$BODY" | jget '["choices"][0]["message"]["content"]')" "tok0 tok1 tok2 " "$k: chat content"
	is "$(echo "$BODY" | jget '["model"]')" mock-ok "$k: response model is the served model"
	is "$(header X-Llmgate-Model)" mock-ok "$k: X-Llmgate-Model header"
	is "$(header X-Llmgate-Attempts)" 1 "$k: one attempt"
	out=$(mock_stats)
	is "$(echo "$out" | jget '["log"][-1]["headers"]["authorization"]')" "Bearer $MOCK_API_KEY" "$k: upstream got the provider key"
	is "$(echo "$out" | jget '["log"][-1]["headers"]["x-title"]')" llmgate-test "$k: provider extra header sent"
	is "$(echo "$out" | jget '["log"][-1]["body"]["model"]')" mock "$k: upstream got its own model id"

	# Streaming arrives incrementally: events as the mock sends them (4
	# chunks 0.4 s apart), then [DONE]. Timed as t/sse-client.py reads them,
	# against the mock's send times (lib.sh ok_streamed).
	mock_reset
	out=$(gw_sse -H 'Content-Type: application/json' \
	    -d "$(chat_body streamer '"stream":true' 'hi MOCK{chunks=4,delay=0.4}')" \
	    "$GW_URL/v1/chat/completions")
	like "$out" 'data: \[DONE\]' "$k: stream ends with [DONE]"
	ok_streamed "$k: stream" "$out" 0.6
	is "$(grep -c '^[0-9.]* data: {' <<<"$out")" 6 "$k: role + 4 content + finish chunks, no usage chunk"
	out=$(mock_stats)
	is "$(echo "$out" | jget '["log"][-1]["body"]["stream_options"]["include_usage"]')" True "$k: usage requested upstream"

	# include_usage from the client: the usage chunk is passed on.
	out=$(gw_curl -N -H 'Content-Type: application/json' \
	    --data-binary "$(chat_body streamer '"stream":true,"stream_options":{"include_usage":true}')" \
	    "$GW_URL/v1/chat/completions")
	like "$out" '"choices":\[\],"usage":\{"prompt_tokens"' "$k: usage chunk relayed when asked"

	# Fallback chain in order: chain-a (503 x2) -> chain-b (502 x2) -> chain-c.
	mock_reset
	post_chat "$(chat_body chain-a)"
	is "$STATUS" 200 "$k: fallback chain succeeds"
	is "$(header X-Llmgate-Model)" chain-c "$k: served by the last model of the chain"
	is "$(header X-Llmgate-Attempts)" 5 "$k: 2+2+1 attempts"
	is "$(mock_stats | jexpr '",".join(e["model"] for e in d["log"])')" \
	    "mock@status=503,mock@status=503,mock@status=502,mock@status=502,mock@tag=c" \
	    "$k: upstream saw the chain in order"

	# A streamed request falls back the same way before its first byte.
	out=$(gw_curl -N -D "$TMPDIR_T/sh" -H 'Content-Type: application/json' \
	    --data-binary "$(chat_body chain-a '"stream":true')" "$GW_URL/v1/chat/completions")
	like "$out" 'data: \[DONE\]' "$k: streamed fallback completes"
	like "$(tr -d '\r' <"$TMPDIR_T/sh")" 'X-Llmgate-Model: chain-c' "$k: streamed fallback served by chain-c"

	# Retry once on 503, then success.
	mock_reset
	post_chat "$(chat_body flaky)"
	is "$STATUS" 200 "$k: retried request succeeds"
	is "$(header X-Llmgate-Attempts)" 2 "$k: retried once"
	is "$(header X-Llmgate-Model)" flaky "$k: served by the same model"

	# Retry-After: 1 is honoured. Timed by the mock: the retry reached it
	# at least a second after the refused request did (the gateway sleeps
	# 1 s after the refusal, which came after the request). The call loop
	# does not depend on the front end: the waits run under one.
	if on_first_server; then
		mock_reset
		post_chat "$(chat_body patient)"
		is "$STATUS" 200 "$k: Retry-After retry succeeds"
		t0=$(mock_stats | jexpr '"%.3f" % (d["log"][1]["t"] - d["log"][0]["t"]) if len(d["log"]) == 2 else "-1"')
		ok "$k: waited for Retry-After (retry ${t0}s after the first try, >= 0.95 s)" \
		    python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 0.95)' "${t0:--1}"
	fi

	# 4xx other than 408/429 is neither retried nor falls back.
	mock_reset
	post_chat "$(chat_body bad-request)"
	is "$STATUS" 400 "$k: upstream 400 passed through"
	is "$(header X-Llmgate-Attempts)" 1 "$k: 400 not retried"
	is "$(echo "$BODY" | jget '["error"]["message"]')" "mock fault 400" "$k: upstream error message kept"

	# Everything fails: the last upstream error reaches the client.
	post_chat "$(chat_body all-fail)"
	is "$STATUS" 502 "$k: last error status after the chain"
	is "$(header X-Llmgate-Attempts)" 4 "$k: all attempts used"
	is "$(echo "$BODY" | jget '["error"]["type"]')" server_error "$k: error in OpenAI shape"

	# Transport failures.
	if on_first_server; then
		post_chat "$(chat_body slowpoke)"
		is "$STATUS" 504 "$k: first byte timeout -> 504"
		is "$(echo "$BODY" | jget '["error"]["code"]')" upstream_timeout "$k: timeout error code"
	fi
	post_chat "$(chat_body unreachable)"
	is "$STATUS" 502 "$k: connection refused -> 502"
	is "$(echo "$BODY" | jget '["error"]["code"]')" upstream_unreachable "$k: unreachable error code"
	post_chat "$(chat_body reset)"
	is "$STATUS" 502 "$k: connection reset -> 502"
	post_chat "$(chat_body malformed)"
	is "$STATUS" 502 "$k: malformed upstream JSON -> 502"
	is "$(echo "$BODY" | jget '["error"]["code"]')" bad_upstream_response "$k: malformed error code"
	# The gateway's own provider key refused: 502, never the client's 401.
	post_chat "$(chat_body badkey)"
	is "$STATUS" 502 "$k: upstream 401 -> 502"
	is "$(echo "$BODY" | jget '["error"]["code"]')" upstream_auth_error "$k: upstream_auth_error code"
	if on_first_server; then
		# A final 429 keeps its Retry-After for the client's backoff.
		post_chat "$(chat_body ratelimited)"
		is "$STATUS" 429 "$k: final upstream 429 passed through"
		is "$(header Retry-After)" 2 "$k: with its Retry-After"
		# A Retry-After wait longer than the heartbeat does not
		# commit a stream: the fallback still happens.
		out=$(gw_curl -N -D "$TMPDIR_T/sh" -H 'Content-Type: application/json' \
		    --data-binary "$(chat_body ratelimited-chain '"stream":true')" "$GW_URL/v1/chat/completions")
		like "$(tr -d '\r' <"$TMPDIR_T/sh")" 'X-Llmgate-Model: chain-c' "$k: stream falls back after a long Retry-After"
		like "$out" 'data: \[DONE\]' "$k: fallen-back stream completes"
	fi
	# Tool-call history: assistant content null, a tool result, a long stop.
	post_chat '{"model":"mock-ok","stop":"\n\nUser: a long stop sequence","messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"w","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"sunny"}]}'
	is "$STATUS" 200 "$k: tool-call history with null content"
	post_chat "$(chat_body 'mock-ok cost=0')"
	is "$STATUS" 400 "$k: model name with a space refused"
	is "$(echo "$BODY" | jget '["error"]["param"]')" model "$k: param names model"
	post_chat "$(chat_body huge)"
	is "$STATUS" 502 "$k: upstream body over max_upstream_body -> 502"
	is "$(echo "$BODY" | jget '["error"]["code"]')" upstream_too_large "$k: too-large error code"
	post_chat "$(chat_body big)"
	is "$STATUS" 200 "$k: a 50 kB upstream answer passes"
	is "$(echo "$BODY" | jexpr 'len(d["choices"][0]["message"]["content"])')" 50000 "$k: large content intact"
	mock_reset
	post_chat "$(chat_body via-proxy)"
	is "$STATUS" 200 "$k: chat through the egress proxy"
	is "$(mock_stats | jget '["log"][-1]["proxied_host"]')" upstream.invalid "$k: the proxy got the upstream's URL"
	post_chat "$(chat_body keyless)"
	is "$STATUS" 503 "$k: provider without key -> 503"
	like "$BODY" LLMGATE_TEST_UNSET_KEY "$k: 503 names the missing variable"

	# A stream cut after it began ends with an in-band error, no fallback.
	out=$(gw_curl -N -H 'Content-Type: application/json' \
	    --data-binary "$(chat_body streamer '"stream":true' 'MOCK{chunks=5,truncate_after=2}')" \
	    "$GW_URL/v1/chat/completions")
	like "$out" 'data: \{"error":\{"message":"provider .mock. ended the stream early' "$k: truncated stream -> error event"
	like "$out" 'data: \[DONE\]' "$k: truncated stream still terminated"

	# Heartbeat while the upstream stalls mid-stream: heartbeat = 1 s, a
	# 4 s stall (a ping is due 1-2 s into it; the rest is room for load).
	out=$(gw_curl -N -H 'Content-Type: application/json' \
	    --data-binary "$(chat_body streamer '"stream":true' 'MOCK{chunks=3,stall_after=1,stall=4}')" \
	    "$GW_URL/v1/chat/completions")
	like "$out" $'\n: ping' "$k: heartbeat comment during a stall"
	like "$out" 'data: \[DONE\]' "$k: stalled stream completes"

	# DeepSeek reasoning_content and OpenRouter comments pass unharmed.
	out=$(gw_curl -N -H 'Content-Type: application/json' \
	    --data-binary "$(chat_body streamer '"stream":true' 'MOCK{reasoning=1,comments=1}')" \
	    "$GW_URL/v1/chat/completions")
	like "$out" '"reasoning_content":"think0 "' "$k: reasoning_content relayed"
	like "$out" ': OPENROUTER PROCESSING' "$k: upstream comments relayed after the stream began"
	like "$out" 'data: \[DONE\]' "$k: stream with comments completes"

	# Bad input.
	post_chat '{"model": "mock-ok", "messages": ['
	is "$STATUS" 400 "$k: truncated JSON -> 400"
	is "$(echo "$BODY" | jget '["error"]["code"]')" invalid_json "$k: invalid_json code"
	post_chat '{"model":"mock-ok"}'
	is "$STATUS" 400 "$k: missing messages -> 400"
	is "$(echo "$BODY" | jget '["error"]["param"]')" messages "$k: param names the field"
	post_chat '{"model":"mock-ok","messages":[{"role":"user","content":"x"}],"temperature":"hot"}'
	is "$(echo "$BODY" | jget '["error"]["param"]')" temperature "$k: wrong type names the field"
	head -c 70000 /dev/zero | tr '\0' 'a' >"$TMPDIR_T/big"
	out=$(gw_curl -o "$TMPDIR_T/big.out" -w '%{http_code}' -H 'Content-Type: application/json' \
	    --data-binary @"$TMPDIR_T/big" "$GW_URL/v1/chat/completions")
	is "$out" 413 "$k: body over max_body -> 413"
	is "$(jget '["error"]["code"]' <"$TMPDIR_T/big.out")" request_too_large "$k: 413 in OpenAI shape"
	is "$(gw_curl -o /dev/null -w '%{http_code}' "$GW_URL/v1/nothing")" 404 "$k: unknown route 404"
	is "$(gw_curl -o /dev/null -w '%{http_code}' "$GW_URL/v1/chat/completions")" 405 "$k: GET on chat -> 405"

	# The client leaving mid-stream (after three events, whatever the
	# load) aborts the upstream transfer.
	mock_reset
	gw_sse --leave-after 3 -H 'Content-Type: application/json' \
	    -d "$(chat_body streamer '"stream":true' 'MOCK{chunks=100,delay=0.2}')" \
	    "$GW_URL/v1/chat/completions" >/dev/null 2>&1
	ok "$k: upstream aborted after the client left" wait_until 15 stream_aborted
}

for_each_server "$CONF" scenarios

done_testing
