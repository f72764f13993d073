#!/bin/bash
# t0630-yandex.sh: models of provider type yandex (YandexGPT's native
# foundationModels/v1/completion), through lighttpd and Apache mod_fcgid in
# front of the mock's Yandex plugin (t/mock_yandex.py): the exact upstream
# request and headers (Api-Key or IAM Bearer, x-folder-id), text and tool
# calls streamed and not, cumulative stream text turned into deltas, status
# and error mapping, fallback from Yandex to an OpenAI-protocol model, and
# Yandex's OpenAI-compatible endpoint through type openai + OpenAI-Project.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=AQVN-mock-secret LLMGATE_MASTER_KEY=sk-master-t0630
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

[provider yandex]
type = yandex
base_url = $MOCK_URL
api_key = env:MOCK_API_KEY
folder = b1gfolder
match = yandexgpt*

[provider yandex-iam]
type = yandex
base_url = $MOCK_URL/
api_key = env:MOCK_API_KEY
folder = b1giam
auth_scheme = Bearer

[provider yandex-compat]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
header = OpenAI-Project: b1gfolder

[provider openai]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[model yandexgpt-test]
provider = yandex
upstream = yandexgpt-lite/latest
input_price = 0.20
output_price = 0.20
max_tokens = 1000

[model yandexgpt-sse]
provider = yandex
upstream = yandexgpt-lite/latest@framing=sse

[model yandexgpt-iam]
provider = yandex-iam
upstream = gpt://b1giam/yandexgpt/latest

[model yandexgpt-unavailable]
provider = yandex
upstream = yandexgpt-lite/latest@status=503
fallback = gpt-backup

[model yandexgpt-badreq]
provider = yandex
upstream = yandexgpt-lite/latest@status=400
fallback = gpt-backup

[model yandexgpt-quota]
provider = yandex
upstream = yandexgpt-lite/latest@status=429,error_shape=flat

[model yandexgpt-denied]
provider = yandex
upstream = yandexgpt-lite/latest@status=401

[model yandexgpt-compat]
provider = yandex-compat
upstream = gpt://b1gfolder/yandexgpt/latest

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
stream() {	# body -> OUT (the raw SSE the client got), HDRS
	HDRS=$TMPDIR_T/h
	OUT=$(gw_curl -N -D "$HDRS" -H 'Content-Type: application/json' \
	    --data-binary "$1" "$GW_URL/v1/chat/completions")
}
j() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null; }
last_upstream() { curl -sS "$MOCK_URL/_mock/stats" | j "$1"; }
header() { tr -d '\r' <"$HDRS" | sed -n "s/^$1: //p"; }
# Python over the chunks of $OUT: c is the list of parsed data events.
chunks() {
	printf '%s' "$OUT" | python3 -c '
import json, sys
c = [json.loads(l[6:]) for l in sys.stdin.read().split("\n")
     if l.startswith("data: {")]
def text(c):
    return "".join((ch.get("delta") or {}).get("content") or ""
                   for o in c for ch in o.get("choices", []))
def deltas(c):
    return sum(1 for o in c for ch in o.get("choices", [])
               if (ch.get("delta") or {}).get("content"))
def finish(c):
    return [ch["finish_reason"] for o in c for ch in o.get("choices", [])
            if ch.get("finish_reason")]
def calls(c):
    return [t for o in c for ch in o.get("choices", [])
            for t in (ch.get("delta") or {}).get("tool_calls") or []]
print(eval(sys.argv[1]))' "$1" 2>/dev/null
}
# The assertions of a streamed text, for either framing; 7 tests.
check_text_stream() {	# LABEL EXPECTED-TEXT PIECES
	is "$(chunks 'text(c)')" "$2" "$1: deltas add up to the final text exactly"
	is "$(chunks 'deltas(c)')" "$3" "$1: one delta per upstream message, none repeated"
	is "$(chunks 'len(c)')" $(($3 + 3)) "$1: role + deltas + finish + usage chunks"
	is "$(chunks 'finish(c)')" "['stop']" "$1: one finish_reason stop"
	is "$(chunks '[o["usage"]["completion_tokens"] for o in c if o.get("usage")]')" "[$3]" \
	    "$1: usage chunk with the final (string) count, not a sum"
	is "$(chunks 'len(set(o["id"] for o in c))')" 1 "$1: one id on every chunk"
	like "$OUT" $'data: \\[DONE\\]\n*$' "$1: stream ends with [DONE]"
}

scenarios() {
	local k=$SERVER_KIND out

	curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null
	# The exact upstream request for a request with system, tools and history.
	post "$(cat "$top_srcdir/t/data/yandex/request_full.openai.json")"
	is "$STATUS" 200 "$k: full request answered"
	out=$(curl -sS "$MOCK_URL/_mock/stats" | python3 -c '
import json, sys
got = json.load(sys.stdin)["log"][-1]["body"]
want = json.load(open(sys.argv[1]))
print("same" if got == want else "differs: " + json.dumps(got, ensure_ascii=False))' \
	    "$top_srcdir/t/data/yandex/request_full.yandex.json")
	is "$out" same "$k: upstream body is the expected Yandex request"
	is "$(last_upstream 'd["log"][-1]["path"]')" /foundationModels/v1/completion "$k: native path"
	is "$(last_upstream 'd["log"][-1]["headers"]["authorization"]')" "Api-Key $MOCK_API_KEY" \
	    "$k: Authorization: Api-Key by default"
	is "$(last_upstream 'd["log"][-1]["headers"]["x-folder-id"]')" b1gfolder "$k: x-folder-id sent"
	is "$(last_upstream 'd["log"][-1]["outcome"]')" ok "$k: the mock accepted the request"

	# Non-streamed text.
	post '{"model":"yandexgpt-test","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: text 200"
	is "$(echo "$BODY" | j 'd["choices"][0]["message"]["content"]')" "tok0 tok1 tok2 " "$k: text content"
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" stop "$k: FINAL -> stop"
	is "$(echo "$BODY" | j 'd["object"], d["model"]')" "('chat.completion', 'yandexgpt-test')" \
	    "$k: OpenAI object, served model name"
	is "$(echo "$BODY" | j '[type(v).__name__ for v in d["usage"].values()]')" "['int', 'int', 'int']" \
	    "$k: string token counts became integers"
	is "$(echo "$BODY" | j 'd["usage"]["completion_tokens"]')" 3 "$k: usage mapped"
	is "$(echo "$BODY" | j 'd["system_fingerprint"]')" 23.10.2024 "$k: modelVersion kept"
	is "$(last_upstream 'd["log"][-1]["body"]["completionOptions"]')" \
	    "{'stream': False, 'maxTokens': '1000'}" "$k: model max_tokens sent as a string"
	is "$(last_upstream '[(m["role"], m["text"]) for m in d["log"][-1]["body"]["messages"]]')" \
	    "[('system', 'Be brief.'), ('user', 'hi')]" "$k: roles and text"

	# Status mapping.
	post '{"model":"yandexgpt-test","max_tokens":2,"messages":[{"role":"user","content":"hi MOCK{status_final=TRUNCATED_FINAL}"}]}'
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" length "$k: TRUNCATED_FINAL -> length"
	is "$(last_upstream 'd["log"][-1]["body"]["completionOptions"]["maxTokens"]')" 2 \
	    "$k: client max_tokens wins"
	post '{"model":"yandexgpt-test","messages":[{"role":"user","content":"hi MOCK{status_final=CONTENT_FILTER}"}]}'
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" content_filter "$k: CONTENT_FILTER -> content_filter"

	# Tool call, then the result sent back by name.
	post '{"model":"yandexgpt-test","messages":[{"role":"user","content":"weather? MOCK{tool=1}"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}'
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" tool_calls "$k: TOOL_CALLS -> tool_calls"
	is "$(echo "$BODY" | j 'json.loads(d["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])')" \
	    "{'city': 'Paris'}" "$k: tool arguments as a JSON string"
	like "$(echo "$BODY" | j 'd["choices"][0]["message"]["tool_calls"][0]["id"]')" '^call_[A-Za-z0-9]{24}$' \
	    "$k: tool call id synthesized"
	is "$(last_upstream 'd["log"][-1]["body"]["tools"]')" \
	    "[{'function': {'name': 'get_weather', 'parameters': {'type': 'object'}}}]" "$k: tools sent"
	post '{"model":"yandexgpt-test","messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_x1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_x1","content":"11C"}],"tools":[{"type":"function","function":{"name":"get_weather"}}]}'
	is "$STATUS" 200 "$k: tool result answered"
	is "$(last_upstream 'd["log"][-1]["body"]["messages"][1:]')" \
	    "[{'role': 'assistant', 'toolCallList': {'toolCalls': [{'functionCall': {'name': 'get_weather', 'arguments': {'city': 'Paris'}}}]}}, {'role': 'user', 'toolResultList': {'toolResults': [{'functionResult': {'name': 'get_weather', 'content': '11C'}}]}}]" \
	    "$k: toolCallList and toolResultList upstream"

	# Streams: NDJSON, one cumulative {"result":...} object a line.
	stream '{"model":"yandexgpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}'
	check_text_stream "$k: NDJSON stream" "tok0 tok1 tok2 " 3
	is "$(last_upstream 'd["log"][-1]["body"]["completionOptions"]["stream"]')" True "$k: stream: true upstream"
	stream '{"model":"yandexgpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi MOCK{cyrillic=1,chunks=5}"}]}'
	check_text_stream "$k: NDJSON Cyrillic stream" "ток0 ток1 ток2 ток3 ток4 " 5
	stream '{"model":"yandexgpt-test","stream":true,"messages":[{"role":"user","content":"hi MOCK{status_final=TRUNCATED_FINAL}"}]}'
	is "$(chunks 'finish(c)')" "['length']" "$k: streamed TRUNCATED_FINAL -> length"
	stream '{"model":"yandexgpt-test","stream":true,"messages":[{"role":"user","content":"weather? MOCK{tool=1}"}],"tools":[{"type":"function","function":{"name":"get_weather"}}]}'
	is "$(chunks '[(t["index"], t["function"]["name"], t["function"]["arguments"]) for t in calls(c)]')" \
	    "[(0, 'get_weather', '{\"city\":\"Paris\"}')]" "$k: streamed tool call once, arguments whole"
	like "$(chunks '[t["id"] for t in calls(c)]')" "^\['call_[A-Za-z0-9]{24}'\]$" "$k: streamed tool call id"
	is "$(chunks 'finish(c)')" "['tool_calls']" "$k: streamed finish_reason tool_calls"
	stream '{"model":"yandexgpt-test","stream":true,"messages":[{"role":"user","content":"hi MOCK{stream_error=1}"}]}'
	is "$(chunks 'text(c)')" "tok0 " "$k: text before a stream error relayed"
	like "$OUT" 'data: \{"error":\{"message":"provider .yandex.: mock stream quota exceeded","type":"upstream_error","param":null,"code":"resource_exhausted"' \
	    "$k: mid-stream error relayed in OpenAI shape"
	like "$OUT" 'data: \[DONE\]' "$k: errored stream terminated"
	stream '{"model":"yandexgpt-test","stream":true,"messages":[{"role":"user","content":"hi MOCK{truncate_after=1}"}]}'
	like "$OUT" 'ended the stream early' "$k: a stream without final status is an error"

	# The other reading of the framing: SSE "data:" lines.
	stream '{"model":"yandexgpt-sse","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}'
	check_text_stream "$k: SSE-framed stream" "tok0 tok1 tok2 " 3
	stream '{"model":"yandexgpt-sse","stream":true,"messages":[{"role":"user","content":"weather? MOCK{tool=1}"}],"tools":[{"type":"function","function":{"name":"get_weather"}}]}'
	is "$(chunks '[(t["function"]["name"], t["function"]["arguments"]) for t in calls(c)]')" \
	    "[('get_weather', '{\"city\":\"Paris\"}')]" "$k: SSE-framed tool call"

	# Errors: both body shapes, passed on or retried as their status says.
	post '{"model":"yandexgpt-badreq","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 400 "$k: upstream 400 passed through, no fallback"
	is "$(echo "$BODY" | j 'd["error"]["message"], d["error"]["code"]')" "('mock fault 400', 'invalid_argument')" \
	    "$k: grpc-style error message and code"
	post '{"model":"yandexgpt-quota","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 429 "$k: 429 after retries"
	is "$(echo "$BODY" | j 'd["error"]["message"], d["error"]["code"]')" "('mock fault 429', 'resource_exhausted')" \
	    "$k: flat {code, message} error"
	is "$(header X-Llmgate-Attempts)" 2 "$k: 429 retried"
	post '{"model":"yandexgpt-denied","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 502 "$k: refused key is the gateway's problem"
	unlike "$BODY" "$MOCK_API_KEY" "$k: key not echoed"

	# 503 before the first byte: retried, then the fallback model serves.
	curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null
	post '{"model":"yandexgpt-unavailable","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: 503 falls back"
	is "$(header X-Llmgate-Model)" gpt-backup "$k: served by the OpenAI fallback"
	is "$(header X-Llmgate-Attempts)" 3 "$k: 2 tries at Yandex + 1"
	is "$(last_upstream '[e["outcome"] for e in d["log"]]')" "['fault:status=503', 'fault:status=503', 'ok']" \
	    "$k: the mock saw both faults"
	stream '{"model":"yandexgpt-unavailable","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	is "$(header X-Llmgate-Model)" gpt-backup "$k: streamed 503 falls back"
	like "$OUT" 'data: \[DONE\]' "$k: fallen-back stream completes"

	# IAM token as Bearer; a full gpt:// model URI gives the folder.
	post '{"model":"yandexgpt-iam","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: IAM model answered"
	is "$(last_upstream 'd["log"][-1]["headers"]["authorization"]')" "Bearer $MOCK_API_KEY" \
	    "$k: auth_scheme Bearer"
	is "$(last_upstream 'd["log"][-1]["headers"]["x-folder-id"], d["log"][-1]["body"]["modelUri"]')" \
	    "('b1giam', 'gpt://b1giam/yandexgpt/latest')" "$k: gpt:// upstream used as is"

	# Yandex's OpenAI-compatible endpoint: type openai, OpenAI-Project header.
	post '{"model":"yandexgpt-compat","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: OpenAI-compatible Yandex answered"
	is "$(last_upstream 'd["log"][-1]["path"], d["log"][-1]["model"]')" \
	    "('/v1/chat/completions', 'gpt://b1gfolder/yandexgpt/latest')" "$k: compat path and model URI"
	is "$(last_upstream 'd["log"][-1]["headers"]["openai-project"]')" b1gfolder "$k: OpenAI-Project header"
	is "$(last_upstream 'd["log"][-1]["headers"]["authorization"]')" "Bearer $MOCK_API_KEY" \
	    "$k: compat key as Bearer"

	# The official client, non-streamed and streamed.
	out=$(node "$SDK/openai-client.mjs" "$GW_URL/v1" "$LLMGATE_MASTER_KEY" yandexgpt-test 2>&1)
	diag "sdk: $out"
	is "$(echo "$out" | j 'd["content"], d["stream_text"], d["stream_usage"]["completion_tokens"]')" \
	    "('tok0 tok1 tok2 ', 'tok0 tok1 tok2 tok3 ', 4)" "$k: sdk text, streamed text and usage"
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-lighttpd apache} for_each_server "$CONF" scenarios
done_testing
