#!/bin/bash
# t0610-gemini.sh: models of provider type gemini, through lighttpd and
# Apache mod_fcgid in front of the mock's Gemini mode (t/mock_gemini.py):
# the exact upstream request, text and tool calls streamed and not, usage
# billed once from cumulative counts, error mapping, fallback from Gemini to
# an OpenAI-protocol model, and the official openai npm client assembling a
# streamed tool call.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=AIza-mock-secret-t0610 LLMGATE_MASTER_KEY=sk-master-t0610
CONF=$TMPDIR_T/llmgate.ini
echo bad-key-t0610 >"$TMPDIR_T/badkey"
chmod a+r "$TMPDIR_T/badkey"
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

[provider gemini]
type = gemini
base_url = $MOCK_URL/v1beta
api_key = env:MOCK_API_KEY

[provider gemini-badkey]
type = gemini
base_url = $MOCK_URL/v1beta
api_key = file:$TMPDIR_T/badkey

[provider openai]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[model gemini-test]
provider = gemini
upstream = gemini-mock
input_price = 0.30
output_price = 2.50
max_tokens = 1000

[model gemini-overloaded]
provider = gemini
upstream = gemini-mock@status=503
fallback = gpt-backup

[model gemini-missing]
provider = gemini
upstream = gemini-nope@status=404

[model gemini-badkey]
provider = gemini-badkey
upstream = gemini-mock

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
stream() {	# body -> OUT (the SSE text), HDRS
	HDRS=$TMPDIR_T/h
	OUT=$(gw_curl -N -D "$HDRS" -H 'Content-Type: application/json' \
	    --data-binary "$1" "$GW_URL/v1/chat/completions")
}
hdr() { tr -d '\r' <"$HDRS" | sed -n "s/^$1: //p"; }
j() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null; }
last_upstream() { curl -sS "$MOCK_URL/_mock/stats" | j "$1"; }
# The chunks of an SSE answer as JSON lines, [DONE] left out.
chunks() { printf '%s\n' "$OUT" | sed -n 's/^data: \({.*\)$/\1/p'; }
# The usage line the gateway logged for request id $1.
usage_line() {
	wait_until 15 grep -q "usage id=$1 " "$SERVER_LOG" 2>/dev/null
	grep -h "usage id=$1 " "$SERVER_LOG" 2>/dev/null | tail -n 1
}

scenarios() {
	local k=$SERVER_KIND out rid

	curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null
	# The exact upstream request for a request with system, tools, history.
	post "$(cat "$top_srcdir/t/data/gemini/request_full.openai.json")"
	is "$STATUS" 200 "$k: full request answered"
	out=$(curl -sS "$MOCK_URL/_mock/stats" | python3 -c '
import json, sys
got = json.load(sys.stdin)["log"][-1]["body"]
want = json.load(open(sys.argv[1]))
print("same" if got == want else "differs: " + json.dumps(got))' \
	    "$top_srcdir/t/data/gemini/request_full.gemini.json")
	is "$out" same "$k: upstream body is the expected Gemini request"
	is "$(last_upstream 'd["log"][-1]["path"]')" /v1beta/models/gemini-mock:generateContent \
	    "$k: model in the URL, generateContent"
	is "$(last_upstream 'd["log"][-1]["headers"]["x-goog-api-key"]')" "$MOCK_API_KEY" "$k: x-goog-api-key sent"
	is "$(last_upstream 'd["log"][-1]["headers"].get("authorization")')" None "$k: no Authorization upstream"

	# Non-streamed text; the model's max_tokens as maxOutputTokens.
	post '{"model":"gemini-test","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: text 200"
	is "$(echo "$BODY" | j 'd["choices"][0]["message"]["content"]')" "tok0 tok1 tok2 " "$k: text content"
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" stop "$k: STOP -> stop"
	is "$(echo "$BODY" | j 'd["object"]')" chat.completion "$k: OpenAI object"
	is "$(echo "$BODY" | j 'd["model"]')" gemini-test "$k: served model name"
	is "$(echo "$BODY" | j '(d["usage"]["prompt_tokens"], d["usage"]["completion_tokens"])')" "(3, 3)" "$k: usage mapped"
	is "$(last_upstream 'd["log"][-1]["body"]["systemInstruction"]')" "{'parts': [{'text': 'Be brief.'}]}" \
	    "$k: system -> systemInstruction"
	is "$(last_upstream 'd["log"][-1]["body"]["generationConfig"]')" "{'maxOutputTokens': 1000}" \
	    "$k: model max_tokens -> maxOutputTokens"

	# Non-streamed tool call: generated ids, finish_reason tool_calls.
	post '{"model":"gemini-test","messages":[{"role":"user","content":"weather? MOCK{tool=2}"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}'
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" tool_calls "$k: STOP with calls -> tool_calls"
	is "$(echo "$BODY" | j '[(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in d["choices"][0]["message"]["tool_calls"]]')" \
	    "[('get_weather', {'city': 'Paris', 'unit': 'c'}), ('get_time', {'tz': 'Europe/Paris'})]" \
	    "$k: both calls with arguments as JSON strings"
	is "$(echo "$BODY" | j 'len({c["id"] for c in d["choices"][0]["message"]["tool_calls"] if c["id"].startswith("call_")})')" 2 \
	    "$k: generated ids, distinct"
	is "$(echo "$BODY" | j 'd["choices"][0]["message"]["content"]')" "Let me check." "$k: text beside the calls"

	# Streamed text: OpenAI chunks, [DONE], usage billed once.
	stream '{"model":"gemini-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi there MOCK{chunks=4,cached=1}"}]}'
	rid=$(hdr X-Request-Id)
	is "$(chunks | grep -c '^{"id"')" 7 "$k: role + 4 text + finish + usage chunks"
	is "$(chunks | python3 -c 'import json,sys; print("".join(json.loads(l)["choices"][0]["delta"].get("content") or "" for l in sys.stdin if json.loads(l)["choices"]))')" \
	    "tok0 tok1 tok2 tok3 " "$k: streamed text"
	like "$OUT" '"finish_reason":"stop"' "$k: streamed finish_reason"
	like "$OUT" '"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":4,"total_tokens":[0-9]+,"prompt_tokens_details":\{"cached_tokens":1\}' \
	    "$k: usage chunk has the final cumulative count (4, not 1+2+3+4)"
	like "$OUT" $'data: \\[DONE\\]\n*$' "$k: stream ends with [DONE]"
	unlike "$OUT" $'\r' "$k: no CR reaches the client"
	like "$(usage_line "$rid")" "stream=1 prompt=[0-9]+ completion=4 cached=1 estimated=0" \
	    "$k: billed once from the last usageMetadata"
	is "$(last_upstream 'd["log"][-1]["path"]')" /v1beta/models/gemini-mock:streamGenerateContent \
	    "$k: streamGenerateContent"
	is "$(last_upstream 'd["log"][-1]["query"]')" alt=sse "$k: ?alt=sse requested"

	# Streamed tool calls: one delta each with id, name, whole arguments.
	stream '{"model":"gemini-test","stream":true,"messages":[{"role":"user","content":"weather? MOCK{tool=2,thought=1}"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}'
	out=$(chunks | python3 -c '
import json, sys
calls, finish, reasoning = {}, None, ""
for line in sys.stdin:
    ch = json.loads(line)["choices"][0]
    finish = ch["finish_reason"] or finish
    reasoning += ch["delta"].get("reasoning_content") or ""
    for tc in ch["delta"].get("tool_calls") or []:
        calls.setdefault(tc["index"], []).append(tc)
print(finish, reasoning.strip(), [(len(v), v[0]["function"]["name"], json.loads(v[0]["function"]["arguments"]))
    for _, v in sorted(calls.items())], len({v[0]["id"] for v in calls.values()}))')
	is "$out" "tool_calls think0 think1 [(1, 'get_weather', {'city': 'Paris', 'unit': 'c'}), (1, 'get_time', {'tz': 'Europe/Paris'})] 2" \
	    "$k: streamed calls whole, ids distinct, thoughts as reasoning_content"

	# Errors: 404 keeps Gemini's message in the OpenAI shape.
	post '{"model":"gemini-missing","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 404 "$k: upstream 404 -> 404"
	like "$(echo "$BODY" | j 'd["error"]["message"]')" '^models/gemini-nope is not found for API version v1beta' \
	    "$k: Gemini's message kept"
	is "$(echo "$BODY" | j '(d["error"]["type"], d["error"]["code"])')" "('not_found', 'NOT_FOUND')" \
	    "$k: type from status, code the status"

	# 503 before the first byte: retried, then the fallback model serves.
	curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null
	post '{"model":"gemini-overloaded","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: 503 falls back"
	is "$(hdr X-Llmgate-Model)" gpt-backup "$k: served by the OpenAI fallback"
	is "$(hdr X-Llmgate-Attempts)" 3 "$k: 2 tries at Gemini + 1"
	is "$(last_upstream 'd["requests"].get("gemini-mock@status=503")')" 2 "$k: Gemini asked twice"
	stream '{"model":"gemini-overloaded","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	is "$(hdr X-Llmgate-Model)" gpt-backup "$k: streamed 503 falls back"
	like "$OUT" 'data: \[DONE\]' "$k: fallen-back stream completes"

	# Gemini's bad key is a 400 that blames the gateway's key: it is judged
	# as the auth failure it is (502, never the client's 400 or 401).
	post '{"model":"gemini-badkey","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 502 "$k: API_KEY_INVALID -> 502"
	is "$(echo "$BODY" | j 'd["error"]["code"]')" upstream_auth_error "$k: API_KEY_INVALID is the gateway's problem"
	unlike "$BODY" 'bad-key-t0610' "$k: the key is not echoed"

	# A stream that breaks after a chunk ends in-band with an error.
	stream '{"model":"gemini-test","stream":true,"messages":[{"role":"user","content":"hi MOCK{stream_error=1}"}]}'
	like "$OUT" 'data: \{"error":\{"message":"The model is overloaded. Please try again later.","type":"unavailable"' \
	    "$k: mid-stream error relayed in OpenAI shape"
	like "$OUT" 'data: \[DONE\]' "$k: errored stream terminated"
	stream '{"model":"gemini-test","stream":true,"messages":[{"role":"user","content":"hi MOCK{truncate_after=2}"}]}'
	like "$OUT" '"code":"upstream_broken"' "$k: a stream closed before its finishReason is an error"

	# Tool arguments that are not JSON cannot be sent to Gemini.
	post '{"model":"gemini-test","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{not json"}}]},{"role":"tool","tool_call_id":"c1","content":"r"}]}'
	is "$STATUS" 400 "$k: non-JSON tool arguments -> 400"

	# The official client assembles a streamed tool call (two calls).
	out=$(node "$SDK/tool-call.mjs" "$GW_URL/v1" "$LLMGATE_MASTER_KEY" gemini-test 2>&1)
	diag "sdk: $out"
	is "$(echo "$out" | j 'd["finish"]')" tool_calls "$k: sdk finish_reason tool_calls"
	is "$(echo "$out" | j '[(c["name"], c["args"]) for c in d["calls"]]')" \
	    "[('get_weather', {'city': 'Paris', 'unit': 'c'}), ('get_time', {'tz': 'Europe/Paris'})]" \
	    "$k: sdk assembled both tool calls with complete arguments"
	is "$(echo "$out" | j 'len({c["id"] for c in d["calls"] if c["id"]})')" 2 "$k: sdk sees two distinct ids"
	is "$(echo "$out" | j 'd["text"]')" "Let me check." "$k: sdk text before the tool calls"
	is "$(echo "$out" | j 'd["helper"][0]["args"]')" "{'city': 'Paris', 'unit': 'c'}" "$k: sdk stream helper's final tool call"
	is "$(echo "$out" | j 'd["helper_finish"]')" tool_calls "$k: sdk stream helper's finish_reason"
	is "$(echo "$out" | j 'd["usage"]["completion_tokens"]')" 10 "$k: sdk usage chunk, counted once"
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-lighttpd apache} for_each_server "$CONF" scenarios
done_testing
