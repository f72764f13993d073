#!/bin/bash
# t0650-transcripts.sh: recorded-shape transcripts under t/data/, replayed
# verbatim by the mock, through the gateway under lighttpd: each provider's
# real framing (Anthropic's event grammar with padded JSON, Gemini's CRLF
# SSE without [DONE], GigaChat's chat.completion chunks, Yandex's
# cumulative NDJSON, OpenAI's include_usage stream) must come out as the
# same text, tool calls and usage in OpenAI's shape.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=sk-mock-transcripts LLMGATE_MASTER_KEY=sk-master-t0650
# GigaChat's authorization key is base64 of client_id:client_secret.
GIGACHAT_AUTH_KEY=$(printf 'llmgate-test:s3cret' | base64)
export GIGACHAT_AUTH_KEY GW_PASSENV="GIGACHAT_AUTH_KEY"
CONF=$TMPDIR_T/llmgate.ini
cat >"$CONF" <<EOF
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY

[retry]
attempts = 1

[provider openai]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[provider anthropic]
type = anthropic
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[provider gemini]
type = gemini
base_url = $MOCK_URL/v1beta
api_key = env:MOCK_API_KEY

[provider gigachat]
type = gigachat
base_url = $MOCK_URL/api/v1
auth_url = $MOCK_URL/api/v2/oauth
api_key = env:GIGACHAT_AUTH_KEY
scope = GIGACHAT_API_PERS

[provider yandex]
type = yandex
base_url = $MOCK_URL
api_key = env:MOCK_API_KEY
folder = b1gmockfolder

[model openai-stream]
provider = openai
upstream = m@replay=unit/openai-stream-include-usage.sse

[model openai-tools]
provider = openai
upstream = m@replay=unit/openai-nonstream-tool-calls.json

[model anthropic-stream]
provider = anthropic
upstream = claude@replay=anthropic/stream_text.sse

[model anthropic-tools]
provider = anthropic
upstream = claude@replay=anthropic/stream_tool_use.sse

[model anthropic-plain]
provider = anthropic
upstream = claude@replay=anthropic/nonstream_text.json

[model gemini-stream]
provider = gemini
upstream = gemini@replay=gemini/stream_sse.txt

[model gemini-tools]
provider = gemini
upstream = gemini@replay=gemini/stream_tool.sse

[model gigachat-stream]
provider = gigachat
upstream = GigaChat@replay=gigachat/stream.sse

[model gigachat-tools]
provider = gigachat
upstream = GigaChat@replay=gigachat/stream_function.sse

[model yandex-stream]
provider = yandex
upstream = yandexgpt@replay=yandex/stream_native.jsonl

[model yandex-tools]
provider = yandex
upstream = yandexgpt@replay=yandex/stream_tool_calls.jsonl
EOF

DATA=$top_srcdir/t/data

# The gateway's stream for model, assembled as a client would: text, tool
# calls (name and whole arguments), last finish_reason, usage, [DONE].
through() {	# model [stream: 1|0] -> one JSON line
	local model=$1 stream=${2:-1}
	gw_curl -N -H 'Content-Type: application/json' --data-binary \
	    "{\"model\":\"$model\",\"stream\":$([ "$stream" = 1 ] && echo true || echo false),\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
	    "$GW_URL/v1/chat/completions" | python3 -c '
import json, sys
raw = sys.stdin.read()
out = {"text": "", "calls": {}, "finish": None, "usage": None, "done": False, "error": None}
if not raw.startswith("data:") and not raw.startswith(":"):
    d = json.loads(raw)
    m = d["choices"][0]["message"]
    out["text"] = m.get("content") or ""
    for i, c in enumerate(m.get("tool_calls") or []):
        out["calls"][i] = [c["function"]["name"], c["function"]["arguments"]]
    out["finish"] = d["choices"][0]["finish_reason"]
    out["usage"] = d.get("usage")
    out["done"] = True
for line in raw.splitlines():
    if not line.startswith("data: "):
        continue
    if line == "data: [DONE]":
        out["done"] = True
        continue
    d = json.loads(line[6:])
    if "error" in d:
        out["error"] = d["error"]["message"]
        continue
    if d.get("usage"):
        out["usage"] = d["usage"]
    for ch in d.get("choices", []):
        delta = ch.get("delta", {})
        out["text"] += delta.get("content") or ""
        for tc in delta.get("tool_calls") or []:
            c = out["calls"].setdefault(tc["index"], ["", ""])
            fn = tc.get("function", {})
            c[0] += fn.get("name") or ""
            c[1] += fn.get("arguments") or ""
        if ch.get("finish_reason"):
            out["finish"] = ch["finish_reason"]
for c in out["calls"].values():
    c[1] = json.loads(c[1]) if c[1] else {}
out["calls"] = [out["calls"][k] for k in sorted(out["calls"])]
print(json.dumps(out, ensure_ascii=False, sort_keys=True))'
}
get() { python3 -c 'import json,sys; d=json.loads(sys.argv[2]); print(json.dumps(eval(sys.argv[1]), ensure_ascii=False, sort_keys=True))' "$1" "$2"; }

# What each transcript says, read straight from the file.
expect() {	# kind file -> the same JSON shape as through()
	python3 - "$1" "$DATA/$2" <<'PY'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
raw = open(path, encoding="utf-8").read()
out = {"text": "", "calls": [], "usage": None}
def events():
    for line in raw.replace("\r\n", "\n").split("\n"):
        if line.startswith("data: ") and line[6:].strip() not in ("", "[DONE]"):
            yield json.loads(line[6:])
        elif line.startswith("{"):
            yield json.loads(line)
if kind == "openai":
    for d in events():
        for ch in d.get("choices", []):
            out["text"] += ch.get("delta", {}).get("content") or ""
        if d.get("usage"):
            out["usage"] = [d["usage"]["prompt_tokens"], d["usage"]["completion_tokens"]]
elif kind == "anthropic":
    args = {}
    for d in events():
        if d["type"] == "content_block_start" and d["content_block"]["type"] == "tool_use":
            args[d["index"]] = [d["content_block"]["name"], ""]
        if d["type"] == "content_block_delta":
            if d["delta"]["type"] == "text_delta":
                out["text"] += d["delta"]["text"]
            elif d["delta"]["type"] == "input_json_delta":
                args[d["index"]][1] += d["delta"]["partial_json"]
        if d["type"] == "message_start":
            u = d["message"]["usage"]
            p = u["input_tokens"] + u.get("cache_read_input_tokens", 0) + u.get("cache_creation_input_tokens", 0)
        if d["type"] == "message_delta":
            out["usage"] = [p, d["usage"]["output_tokens"]]
    out["calls"] = [[n, json.loads(a)] for _, (n, a) in sorted(args.items())]
elif kind == "gemini":
    for d in events():
        for part in d["candidates"][0]["content"].get("parts", []):
            if "text" in part and not part.get("thought"):
                out["text"] += part["text"]
            if "functionCall" in part:
                out["calls"].append([part["functionCall"]["name"], part["functionCall"].get("args", {})])
        u = d.get("usageMetadata", {})
        out["usage"] = [u.get("promptTokenCount", 0), u.get("candidatesTokenCount", 0) + u.get("thoughtsTokenCount", 0)]
elif kind == "gigachat":
    for d in events():
        for ch in d.get("choices", []):
            dl = ch.get("delta", {})
            out["text"] += dl.get("content") or ""
            if dl.get("function_call"):
                out["calls"].append([dl["function_call"]["name"], dl["function_call"]["arguments"]])
        if d.get("usage"):
            # precached_prompt_tokens come on top of prompt_tokens (the
            # adapter's reading; total_tokens leaves them out).
            u = d["usage"]
            out["usage"] = [u["prompt_tokens"] + u.get("precached_prompt_tokens", 0),
                            u["completion_tokens"]]
elif kind == "yandex":
    last = None
    for d in events():
        last = d.get("result", d)
    msg = last["alternatives"][0]["message"]
    out["text"] = msg.get("text", "")
    for tc in (msg.get("toolCallList") or {}).get("toolCalls", []):
        fc = tc["functionCall"]
        a = fc.get("arguments", {})
        out["calls"].append([fc["name"], json.loads(a) if isinstance(a, str) else a])
    out["usage"] = [int(last["usage"]["inputTextTokens"]), int(last["usage"]["completionTokens"])]
print(json.dumps(out, ensure_ascii=False, sort_keys=True))
PY
}

check() {	# label model kind file
	local got want
	got=$(through "$2")
	want=$(expect "$3" "$4")
	is "$(get 'd["text"]' "$got")" "$(get 'd["text"]' "$want")" "$1: text as recorded"
	is "$(get 'd["calls"]' "$got")" "$(get 'd["calls"]' "$want")" "$1: tool calls whole"
	is "$(get '[d["usage"]["prompt_tokens"], d["usage"]["completion_tokens"]] if d["usage"] else None' "$got")" \
	    "$(get 'd["usage"]' "$want")" "$1: usage as the transcript's final count"
	is "$(get 'd["done"]' "$got")" true "$1: ends with [DONE]"
	is "$(get 'd["error"]' "$got")" null "$1: no error"
}

scenarios() {
	check "$SERVER_KIND openai stream" openai-stream openai unit/openai-stream-include-usage.sse
	check "$SERVER_KIND anthropic stream" anthropic-stream anthropic anthropic/stream_text.sse
	check "$SERVER_KIND anthropic tool stream" anthropic-tools anthropic anthropic/stream_tool_use.sse
	check "$SERVER_KIND gemini stream (CRLF, no [DONE])" gemini-stream gemini gemini/stream_sse.txt
	check "$SERVER_KIND gemini tool stream" gemini-tools gemini gemini/stream_tool.sse
	check "$SERVER_KIND gigachat stream" gigachat-stream gigachat gigachat/stream.sse
	check "$SERVER_KIND gigachat function stream" gigachat-tools gigachat gigachat/stream_function.sse
	check "$SERVER_KIND yandex cumulative NDJSON" yandex-stream yandex yandex/stream_native.jsonl
	check "$SERVER_KIND yandex tool calls" yandex-tools yandex yandex/stream_tool_calls.jsonl

	out=$(through anthropic-plain 0)
	is "$(get 'd["text"]' "$out")" '"Hello!"' "$SERVER_KIND anthropic recorded message"
	out=$(through openai-tools 0)
	is "$(get 'd["calls"]' "$out")" '[["get_weather", {"city": "Edinburgh"}]]' "$SERVER_KIND openai recorded tool call"
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-lighttpd} for_each_server "$CONF" scenarios
done_testing
