#!/bin/bash
# t0600-anthropic.sh: models of provider type anthropic, through lighttpd
# and Apache mod_fcgid in front of the mock's Anthropic Messages mode:
# text and tool calls, streamed and not, the exact upstream request, error
# mapping, fallback from Anthropic to an OpenAI-protocol model, and the
# official openai npm client assembling a streamed tool call.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=sk-ant-mock-secret LLMGATE_MASTER_KEY=sk-master-t0600
CONF=$TMPDIR_T/llmgate.ini
cat >"$CONF" <<EOF
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY
; Every front end counts the same retries of the failing models: no
; circuit breakers here (t0835 tests them).
breaker = off

[retry]
attempts = 2
backoff_ms = 50
backoff_max_ms = 100

[provider anthropic]
type = anthropic
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
match = claude-*

[provider openai]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[model claude-test]
provider = anthropic
upstream = claude-mock
input_price = 3.00
output_price = 15.00
max_tokens = 1000

[model claude-overloaded]
provider = anthropic
upstream = claude-mock@status=529
fallback = gpt-backup

[model claude-badreq]
provider = anthropic
upstream = claude-mock@status=400
fallback = gpt-backup

[model gpt-backup]
provider = openai
upstream = mock@tag=backup
EOF

setup_sdk

post() {	# body -> BODY, STATUS, HDRS
	HDRS=$TMPDIR_T/h
	BODY=$(gw_curl -D "$HDRS" -w '\n%{http_code}' -H 'Content-Type: application/json' \
	    --data-binary "$1" "$GW_URL/v1/chat/completions")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
j() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null; }
last_upstream() { curl -sS "$MOCK_URL/_mock/stats" | j "$1"; }

scenarios() {
	local k=$SERVER_KIND out

	curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null
	# The exact upstream request for a request with system, tools and history.
	post "$(cat "$top_srcdir/t/data/anthropic/request_full.openai.json" |
	    sed 's/"model":"claude-test"/"model":"claude-test"/')"
	is "$STATUS" 200 "$k: full request answered"
	out=$(curl -sS "$MOCK_URL/_mock/stats" | python3 -c '
import json, sys
got = json.load(sys.stdin)["log"][-1]["body"]
want = json.load(open(sys.argv[1]))
want["model"] = "claude-mock"
want["max_tokens"] = 1000
print("same" if got == want else "differs: " + json.dumps(got))' \
	    "$top_srcdir/t/data/anthropic/request_full.anthropic.json")
	is "$out" same "$k: upstream body is the expected Anthropic request"
	is "$(last_upstream 'd["log"][-1]["headers"]["x-api-key"]')" "$MOCK_API_KEY" "$k: x-api-key sent"
	is "$(last_upstream 'd["log"][-1]["headers"]["anthropic-version"]')" 2023-06-01 "$k: anthropic-version sent"
	is "$(last_upstream 'd["log"][-1]["headers"].get("authorization")')" None "$k: no Authorization upstream"

	# Non-streamed text and tool call.
	post '{"model":"claude-test","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: text 200"
	is "$(echo "$BODY" | j 'd["choices"][0]["message"]["content"]')" "tok0 tok1 tok2 " "$k: text content"
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" stop "$k: end_turn -> stop"
	is "$(echo "$BODY" | j 'd["object"]')" chat.completion "$k: OpenAI object"
	is "$(echo "$BODY" | j 'd["usage"]["completion_tokens"]')" 3 "$k: usage mapped"
	is "$(last_upstream 'd["log"][-1]["body"]["system"]')" "Be brief." "$k: system moved to the top level"
	post '{"model":"claude-test","messages":[{"role":"user","content":"weather? MOCK{tool=1}"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}'
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" tool_calls "$k: tool_use -> tool_calls"
	is "$(echo "$BODY" | j 'json.loads(d["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])')" \
	    "{'city': 'Paris', 'unit': 'c'}" "$k: tool arguments as a JSON string"
	is "$(echo "$BODY" | j 'd["choices"][0]["message"]["tool_calls"][0]["id"]')" toolu_mock1 "$k: tool call id kept"

	# Streamed text: OpenAI chunks, [DONE], usage chunk when asked.
	out=$(gw_curl -N -H 'Content-Type: application/json' --data-binary \
	    '{"model":"claude-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi MOCK{cached=4}"}]}' \
	    "$GW_URL/v1/chat/completions")
	is "$(echo "$out" | grep -c '^data: {"id"')" 6 "$k: role + 3 text + finish + usage chunks"
	like "$out" '"finish_reason":"stop"' "$k: streamed finish_reason"
	like "$out" '"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":3,.*"cached_tokens":4' "$k: streamed usage with cached tokens"
	like "$out" 'data: \[DONE\]' "$k: stream ends with [DONE]"
	unlike "$out" 'event:' "$k: no Anthropic event lines reach the client"

	# Mid-stream overloaded error: an OpenAI error event, then [DONE].
	out=$(gw_curl -N -H 'Content-Type: application/json' --data-binary \
	    '{"model":"claude-test","stream":true,"messages":[{"role":"user","content":"hi MOCK{stream_error=2}"}]}' \
	    "$GW_URL/v1/chat/completions")
	like "$out" 'data: \{"error":\{"message":"provider .anthropic.: Overloaded","type":"overloaded_error"' "$k: mid-stream error relayed in OpenAI shape"
	like "$out" 'data: \[DONE\]' "$k: errored stream terminated"

	# 529 before the first byte: retried, then the fallback model serves.
	curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null
	post '{"model":"claude-overloaded","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: 529 falls back"
	is "$(tr -d '\r' <"$HDRS" | sed -n 's/^X-Llmgate-Model: //p')" gpt-backup "$k: served by the OpenAI fallback"
	is "$(tr -d '\r' <"$HDRS" | sed -n 's/^X-Llmgate-Attempts: //p')" 3 "$k: 2 tries at Anthropic + 1"
	out=$(gw_curl -N -D "$HDRS" -H 'Content-Type: application/json' --data-binary \
	    '{"model":"claude-overloaded","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
	    "$GW_URL/v1/chat/completions")
	like "$(tr -d '\r' <"$HDRS")" 'X-Llmgate-Model: gpt-backup' "$k: streamed 529 falls back"
	like "$out" 'data: \[DONE\]' "$k: fallen-back stream completes"

	# A 400 from Anthropic is the client's problem: passed on, no fallback.
	post '{"model":"claude-badreq","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 400 "$k: upstream 400 passed through"
	is "$(echo "$BODY" | j 'd["error"]["type"]')" invalid_request_error "$k: Anthropic error type kept"

	# Tool arguments that are not JSON cannot be sent to Anthropic.
	post '{"model":"claude-test","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{not json"}}]},{"role":"tool","tool_call_id":"c1","content":"r"}]}'
	is "$STATUS" 400 "$k: non-JSON tool arguments -> 400"

	# The official client assembles a streamed tool call (two calls).
	out=$(node "$SDK/tool-call.mjs" "$GW_URL/v1" "$LLMGATE_MASTER_KEY" claude-test 2>&1)
	diag "sdk: $out"
	is "$(echo "$out" | j 'd["finish"]')" tool_calls "$k: sdk finish_reason tool_calls"
	is "$(echo "$out" | j '[(c["id"], c["name"], c["args"]) for c in d["calls"]]')" \
	    "[('toolu_mock1', 'get_weather', {'city': 'Paris', 'unit': 'c'}), ('toolu_mock2', 'get_time', {'tz': 'Europe/Paris'})]" \
	    "$k: sdk assembled both tool calls with complete arguments"
	is "$(echo "$out" | j 'd["text"]')" "Let me check." "$k: sdk text before the tool calls"
	is "$(echo "$out" | j 'd["helper"][0]["args"]')" "{'city': 'Paris', 'unit': 'c'}" "$k: sdk stream helper's final tool call"
	is "$(echo "$out" | j 'd["usage"]["completion_tokens"]')" 10 "$k: sdk usage chunk"
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-lighttpd apache} for_each_server "$CONF" scenarios
done_testing
