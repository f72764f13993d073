#!/bin/bash
# t0620-gigachat.sh: models of provider type gigachat, through lighttpd and
# Apache mod_fcgid in front of the mock's GigaChat mode (t/mock_gigachat.py):
# the OAuth token (Basic key, RqUID, scope) fetched once and cached, the
# refresh after a 401, the exact upstream request, text and function calls
# streamed and not, error mapping, and fallbacks to an OpenAI-protocol model
# when GigaChat fails or its token cannot be had.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
GIGACHAT_AUTH_KEY=$(printf 'llmgate-test:s3cret' | base64)
export MOCK_API_KEY=sk-mock-t0620 LLMGATE_MASTER_KEY=sk-master-t0620 GIGACHAT_AUTH_KEY
export GW_PASSENV="GIGACHAT_AUTH_KEY"
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

[provider gigachat]
type = gigachat
base_url = $MOCK_URL/api/v1
api_key = env:GIGACHAT_AUTH_KEY
auth_url = $MOCK_URL/api/v2/oauth
scope = GIGACHAT_API_B2B

[provider gigachat-badscope]
type = gigachat
base_url = $MOCK_URL/api/v1
api_key = env:GIGACHAT_AUTH_KEY
auth_url = $MOCK_URL/api/v2/oauth
scope = GIGACHAT_API_NOPE

[provider openai]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[model giga]
provider = gigachat
upstream = GigaChat
input_price = 1.00
output_price = 2.00

[model giga-down]
provider = gigachat
upstream = GigaChat@status=503
fallback = gpt-backup

[model giga-missing]
provider = gigachat
upstream = GigaChat-Nope@status=404

[model giga-noauth]
provider = gigachat-badscope
upstream = GigaChat
fallback = gpt-backup

[model gpt-backup]
provider = openai
upstream = mock@tag=backup

[model giga-vision]
provider = gigachat
upstream = GigaChat
fallback = gpt-backup

[model gpt-down]
provider = openai
upstream = mock@status=503
fallback = giga
EOF

post() {	# body -> BODY, STATUS, HDRS
	HDRS=$TMPDIR_T/h
	BODY=$(gw_curl -D "$HDRS" -w '\n%{http_code}' -H 'Content-Type: application/json' \
	    --data-binary "$1" "$GW_URL/v1/chat/completions")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
stream() {	# body -> OUT (the SSE text), HDRS
	HDRS=$TMPDIR_T/h
	OUT=$(gw_curl -N -D "$HDRS" -H 'Content-Type: application/json' --data-binary "$1" \
	    "$GW_URL/v1/chat/completions")
}
hdr() { tr -d '\r' <"$HDRS" | sed -n "s/^$1: //p"; }
j() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null; }
stats() { curl -sS "$MOCK_URL/_mock/stats" | j "$1"; }
# The chat entries of the mock's log (GigaChat's route only), and the token requests.
CHATS='[e for e in d["log"] if e["path"] == "/api/v1/chat/completions"]'
OAUTHS='[e for e in d["log"] if e["path"] == "/api/v2/oauth"]'
# An SSE stream -> {"text", "finish", "calls": [[id, name, args]], "usage", "objects"}.
assemble() {
	python3 -c '
import json, sys
text, finish, calls, usage, objects = "", None, {}, None, set()
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("data: {"):
        continue
    c = json.loads(line[6:])
    objects.add(c.get("object"))
    usage = c.get("usage") or usage
    for ch in c.get("choices", []):
        finish = ch.get("finish_reason") or finish
        dl = ch.get("delta", {})
        text += dl.get("content") or ""
        for tc in dl.get("tool_calls") or []:
            e = calls.setdefault(tc["index"], ["", "", ""])
            e[0] = tc.get("id") or e[0]
            e[1] = (tc.get("function") or {}).get("name") or e[1]
            e[2] += (tc.get("function") or {}).get("arguments") or ""
print(json.dumps({"text": text, "finish": finish, "usage": usage,
    "objects": sorted(o or "" for o in objects),
    "calls": [calls[i] for i in sorted(calls)]}))'
}
# The gateway processes under the current server (Apache may run several).
gw_procs() {
	local p n=0
	for p in $(_descendants "${_server_pids[0]}"); do
		[ "$(ps -o comm= -p "$p" 2>/dev/null)" = llmgate ] && n=$((n + 1))
	done
	echo "$n"
}

scenarios() {
	local k=$SERVER_KIND out n procs pids

	curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null
	# A cold start under concurrent requests: threads wait for one token.
	pids=()
	for n in 1 2 3 4 5 6; do
		gw_curl -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
		    --data-binary '{"model":"giga","messages":[{"role":"user","content":"hi"}]}' \
		    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/par.$n" &
		pids+=($!)
	done
	wait "${pids[@]}"	# not the servers: they are background jobs too
	is "$(cat "$TMPDIR_T"/par.* | sort | uniq -c | tr -s ' ')" " 6 200" "$k: 6 concurrent requests answered"

	# The exact upstream request for system, tools, tool results and history.
	post "$(cat "$top_srcdir/t/data/gigachat/request_full.openai.json")"
	is "$STATUS" 200 "$k: full request answered"
	out=$(curl -sS "$MOCK_URL/_mock/stats" | python3 -c '
import json, sys
d = json.load(sys.stdin)
got = [e for e in d["log"] if e["path"] == "/api/v1/chat/completions"][-1]["body"]
want = json.load(open(sys.argv[1]))
print("same" if got == want else "differs: " + json.dumps(got, ensure_ascii=False))' \
	    "$top_srcdir/t/data/gigachat/request_full.gigachat.json")
	is "$out" same "$k: upstream body is the expected GigaChat request"
	like "$(stats "$CHATS[-1][\"headers\"][\"authorization\"]")" '^Bearer tok-[0-9]+$' \
	    "$k: chat call carries the access token"
	is "$(stats "$OAUTHS[0][\"headers\"][\"authorization\"]")" "Basic $GIGACHAT_AUTH_KEY" \
	    "$k: token request with the Basic authorization key"
	like "$(stats "$OAUTHS[0][\"headers\"][\"rquid\"]")" \
	    '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' \
	    "$k: RqUID is a UUID v4"
	is "$(stats "$OAUTHS[0][\"body\"]")" "{'scope': ['GIGACHAT_API_B2B']}" "$k: configured scope sent"
	is "$(stats "$OAUTHS[0][\"headers\"][\"accept\"]")" application/json "$k: Accept: application/json"

	# Non-streamed text.
	post '{"model":"giga","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi MOCK{cached=2}"}],"stop":"x"}'
	is "$STATUS" 200 "$k: text 200"
	is "$(echo "$BODY" | j 'd["choices"][0]["message"]["content"]')" "tok0 tok1 tok2 " "$k: text content"
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" stop "$k: finish_reason stop"
	is "$(echo "$BODY" | j 'd["object"]')" chat.completion "$k: OpenAI object"
	like "$(echo "$BODY" | j 'd["id"]')" '^chatcmpl-[A-Za-z0-9]{24}$' "$k: an id is made up"
	is "$(echo "$BODY" | j 'd["model"]')" giga "$k: the served name, not GigaChat's versioned one"
	is "$(echo "$BODY" | j '(d["usage"]["completion_tokens"], d["usage"]["prompt_tokens_details"]["cached_tokens"])')" \
	    "(3, 2)" "$k: usage with precached tokens as cached"
	is "$(stats "$CHATS[-1][\"body\"].get(\"stop\")")" None "$k: stop is not sent"
	is "$(hdr X-Llmgate-Model)" giga "$k: X-Llmgate-Model"

	# Streamed text: OpenAI chunks, [DONE], the usage chunk when asked.
	stream '{"model":"giga","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi MOCK{cached=1}"}]}'
	out=$(echo "$OUT" | assemble)
	is "$(echo "$out" | j 'd["text"]')" "tok0 tok1 tok2 " "$k: streamed text"
	is "$(echo "$out" | j 'd["finish"]')" stop "$k: streamed finish_reason"
	is "$(echo "$out" | j 'd["objects"]')" "['chat.completion.chunk']" "$k: every chunk is a chat.completion.chunk"
	is "$(echo "$out" | j '(d["usage"]["completion_tokens"], d["usage"]["prompt_tokens_details"]["cached_tokens"])')" \
	    "(3, 1)" "$k: streamed usage chunk"
	is "$(echo "$OUT" | grep -c '^data: {"id"')" 5 "$k: 3 text + finish + usage chunks"
	is "$(echo "$OUT" | grep -c '^data: \[DONE\]')" 1 "$k: one [DONE]"
	is "$(echo "$OUT" | grep -o '"id":"[^"]*"' | sort -u | wc -l)" 1 "$k: one id across the chunks"
	stream '{"model":"giga","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	unlike "$OUT" '"usage"' "$k: no usage unless asked"

	# Function calls, not streamed and streamed.
	post '{"model":"giga","messages":[{"role":"user","content":"weather? MOCK{tool=1}"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}'
	is "$(echo "$BODY" | j 'd["choices"][0]["finish_reason"]')" tool_calls "$k: function_call -> tool_calls"
	is "$(echo "$BODY" | j 'json.loads(d["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])')" \
	    "{'city': 'Paris', 'unit': 'c'}" "$k: arguments as a JSON string"
	like "$(echo "$BODY" | j 'd["choices"][0]["message"]["tool_calls"][0]["id"]')" '^call_' "$k: tool call id made up"
	is "$(stats "$CHATS[-1][\"body\"][\"function_call\"]")" auto "$k: tools -> functions, function_call auto"
	stream '{"model":"giga","stream":true,"messages":[{"role":"user","content":"weather? MOCK{tool=1}"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}'
	out=$(echo "$OUT" | assemble)
	is "$(echo "$out" | j '[(c[0][:5], c[1], json.loads(c[2])) for c in d["calls"]]')" \
	    "[('call_', 'get_weather', {'city': 'Paris', 'unit': 'c'})]" "$k: streamed tool call whole"
	is "$(echo "$out" | j 'd["finish"]')" tool_calls "$k: streamed finish_reason tool_calls"
	is "$(stats "$CHATS[-1][\"body\"][\"function_call\"]")" "{'name': 'get_weather'}" "$k: tool_choice -> function_call"

	# The token was fetched once and cached (per process under Apache).
	n=$(stats "len($OAUTHS)")
	if [ "$k" = lighttpd ]; then
		is "$n" 1 "$k: one token request for all requests"
	else
		procs=$(gw_procs)
		ok "$k: at most one token request per gateway process ($n, $procs processes)" \
		    test "$n" -ge 1 -a "$n" -le "$procs"
	fi
	is "$(stats "len(set(e[\"headers\"][\"authorization\"] for e in $CHATS))")" "$n" \
	    "$k: as many tokens in use as were issued"

	# GigaChat says 401: a new token, one retry, success.
	post '{"model":"giga","messages":[{"role":"user","content":"hi MOCK{expire_token=1}"}]}'
	is "$STATUS" 200 "$k: the request survives an expired token"
	is "$(hdr X-Llmgate-Attempts)" 2 "$k: one retry after the 401"
	is "$(stats "[e[\"outcome\"] for e in $CHATS][-2:]")" "['fault:expire_token', 'ok']" \
	    "$k: 401, then success"
	is "$(stats "len(set(e[\"headers\"][\"authorization\"] for e in $CHATS[-2:]))")" 2 \
	    "$k: the retry used a new token"
	is "$(stats "[e[\"path\"] for e in d[\"log\"]][-2]")" /api/v2/oauth "$k: the token was refreshed in between"
	if [ "$k" = lighttpd ]; then
		is "$(stats "len($OAUTHS)")" 2 "$k: two token requests in total"
	fi
	post '{"model":"giga","messages":[{"role":"user","content":"again"}]}'
	is "$STATUS" 200 "$k: the refreshed token serves on"

	# Errors: GigaChat's 404 body reaches the client.
	post '{"model":"giga-missing","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 404 "$k: upstream 404 passed on"
	is "$(echo "$BODY" | j 'd["error"]["message"]')" "No such model" "$k: GigaChat's message kept"
	is "$(echo "$BODY" | j 'd["error"]["code"]')" model_not_found "$k: code model_not_found"

	# 503 before the first byte: retried, then the OpenAI fallback serves.
	post '{"model":"giga-down","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: 503 falls back"
	is "$(hdr X-Llmgate-Model)" gpt-backup "$k: served by the OpenAI fallback"
	is "$(hdr X-Llmgate-Attempts)" 3 "$k: 2 tries at GigaChat + 1"
	stream '{"model":"giga-down","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	is "$(hdr X-Llmgate-Model)" gpt-backup "$k: streamed 503 falls back"
	like "$OUT" 'data: \[DONE\]' "$k: fallen-back stream completes"

	# What GigaChat cannot carry (an image) moves on to the fallback at
	# once; with no fallback it is the client's 400; and a model that
	# cannot take the request never hides an earlier model's outage.
	img='[{"type":"text","text":"what is it"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]'
	n=$(stats "len($CHATS)")
	post "{\"model\":\"giga-vision\",\"messages\":[{\"role\":\"user\",\"content\":$img}]}"
	is "$STATUS/$(hdr X-Llmgate-Model)/$(hdr X-Llmgate-Attempts)" 200/gpt-backup/1 \
	    "$k: an image for GigaChat is served by the fallback, in one attempt"
	is "$(stats "len($CHATS)")" "$n" "$k: GigaChat was not called with it"
	post "{\"model\":\"giga\",\"messages\":[{\"role\":\"user\",\"content\":$img}]}"
	is "$STATUS/$(echo "$BODY" | j 'd["error"]["code"]')/$(hdr X-Llmgate-Attempts)" \
	    400/unsupported_content/0 "$k: without a fallback it is the client's 400"
	post "{\"model\":\"gpt-down\",\"messages\":[{\"role\":\"user\",\"content\":$img}]}"
	is "$STATUS/$(hdr X-Llmgate-Attempts)" 503/2 \
	    "$k: an outage before a model that cannot take the request is what the client hears"
	isnt "$(echo "$BODY" | j 'd["error"]["code"]')" unsupported_content \
	    "$k: not the later model's refusal"

	# No token to be had (the scope is refused): the fallback serves.
	n=$(stats "len($CHATS)")
	post '{"model":"giga-noauth","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 200 "$k: token failure falls back"
	is "$(hdr X-Llmgate-Model)" gpt-backup "$k: served by the fallback"
	is "$(stats "$OAUTHS[-1][\"outcome\"]")" fault:oauth:scope "$k: the token endpoint refused the scope"
	is "$(stats "len($CHATS)")" "$n" "$k: no chat call without a token"

	# Neither the authorization key nor an access token reaches a log.
	# The log is read once the token failure's line is in it (the server
	# may write it a moment after the answer).
	ok "$k: the token failure is logged" wait_until 10 \
	    grep -q 'scope from db not fully includes consumed scope' "$SERVER_LOG"
	ok "$k: no key or token in the gateway's log" \
	    bash -c '! grep -qE -e "$1|Bearer tok-|Basic " "$2"' _ "$GIGACHAT_AUTH_KEY" "$SERVER_LOG"
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-lighttpd apache} for_each_server "$CONF" scenarios
done_testing
