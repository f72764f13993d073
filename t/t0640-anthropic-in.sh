#!/bin/bash
# t0640-anthropic-in.sh: the Anthropic Messages API spoken by the client
# (POST /v1/messages, /v1/messages/count_tokens) over the one chat
# pipeline, with the official @anthropic-ai/sdk npm client: text and
# streams, a streamed tool call round trip, through an Anthropic-backed
# model (native: the client's body reaches the mock as it was sent, model
# and max_tokens the gateway's) and OpenAI- and Gemini-backed ones
# (translated); usage rows agree with what the SDK saw; errors in
# Anthropic's shape; a client that leaves mid-stream is billed; a redact
# policy applies to what is forwarded, native and translated; a Claude
# Code shaped request; count_tokens exact and estimated; valgrind.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=sk-ant-mock-secret LLMGATE_MASTER_KEY=sk-master-t0640
CONF=$TMPDIR_T/llmgate.ini
cat >"$CONF" <<EOF
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY
breaker = off

[retry]
attempts = 1

[provider anthropic]
type = anthropic
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[provider openai]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[provider gemini]
type = gemini
base_url = $MOCK_URL/v1beta
api_key = env:MOCK_API_KEY

[model claude-in]
provider = anthropic
upstream = claude-mock
input_price = 3.00
output_price = 15.00
max_tokens = 1000

[model claude-slow]
provider = anthropic
upstream = claude-mock@chunks=40,delay=0.1
input_price = 3.00
output_price = 15.00

[model gpt-in]
provider = openai
upstream = mock
input_price = 2.00
output_price = 8.00

[model gem-in]
provider = gemini
upstream = gemini-mock
input_price = 0.30
output_price = 2.50

[policy redactall]
pii = redact
ip = off
EOF

setup_sdk
create_key K --name anthin
create_key R --name red --policy redactall

# sdk MODEL MODE [HOW]: the SDK's JSON in OUT; KEY defaults to $K.
sdk() {
	OUT=$(cd "$SDK" && timeout 60 node anthropic-client.mjs "$GW_URL" \
	    "${KEY:-$K}" "$@" 2>&1)
}
# rows KEY_ID: the usage rows of a key, one JSON object a line.
last_row() {
	admin usage --rows --key "$1" | tail -1
}
# rows_beyond KEY_ID N: the key has more than N usage rows.
rows_beyond() {
	[ "$(admin usage --rows --key "$1" | wc -l)" -gt "$2" ]
}
# cost_ok MODEL ROW SDK-OUT NAME: the row's cost is the SDK's usage priced
# as [model MODEL] says (micro-USD, within rounding).
cost_ok() {
	local got
	got=$(python3 -c '
import json, sys
price = {"claude-in": (3.00, 15.00), "gpt-in": (2.00, 8.00), "gem-in": (0.30, 2.50)}[sys.argv[1]]
row, u = json.loads(sys.argv[2]), json.loads(sys.argv[3])["message"]["usage"]
want = u["input_tokens"] * price[0] + u["output_tokens"] * price[1]
print("ok" if abs(row["cost_micro_usd"] - want) <= 1 and want > 0 else "row %s, sdk usage %s" % (row["cost_micro_usd"], u))' "$1" "$2" "$3" 2>&1)
	is "$got" ok "$4"
}
# The mock's last logged request to PATH-ERE.
mock_last() {
	mock_log | python3 -c '
import json, re, sys
log = [e for e in json.load(sys.stdin)["log"] if re.search(sys.argv[1], e["path"])]
print(json.dumps(log[-1] if log else {}))' "$1"
}
# post PATH BODY [CURL-ARGS...]: STATUS, BODY (no key unless given).
post() {
	local path=$1 body=$2
	shift 2
	BODY=$(curl -sS --max-time 60 -o - -w '\n%{http_code}' -X POST \
	    -H 'Content-Type: application/json' "$@" --data-binary "$body" \
	    "$GW_URL$path")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}

scenarios() {
	local k=$SERVER_KIND m

	# --- text, not streamed, through each kind of provider ------------------
	for m in claude-in gpt-in gem-in; do
		sdk "$m" text
		is "$(jx 'd["message"]["type"]' <<<"$OUT")" message "$k: $m: a message"
		is "$(jx 'd["message"]["content"][0]["text"]' <<<"$OUT")" \
		    "tok0 tok1 tok2 " "$k: $m: its text"
		is "$(jx 'd["message"]["stop_reason"]' <<<"$OUT")" end_turn \
		    "$k: $m: stop_reason"
		like "$(jx 'd["message"]["id"]' <<<"$OUT")" '^msg_' "$k: $m: id"
		row=$(last_row "$K_ID")
		is "$(jx 'd["completion_tokens"]' <<<"$row")" \
		    "$(jx 'd["message"]["usage"]["output_tokens"]' <<<"$OUT")" \
		    "$k: $m: output tokens in the usage row are the SDK's"
		is "$(jx 'd["prompt_tokens"]' <<<"$row")" \
		    "$(jx 'd["message"]["usage"]["input_tokens"]' <<<"$OUT")" \
		    "$k: $m: input tokens in the usage row are the SDK's"
		is "$(jx 'd["served"]' <<<"$row")" "$m" "$k: $m: served"
		cost_ok "$m" "$row" "$OUT" "$k: $m: the row's cost is the SDK's usage at the model's prices"
	done
	# Native: the system string and the model/max_tokens the gateway's.
	sdk claude-in text
	req=$(mock_last '/messages$')
	is "$(jx 'd["body"]["system"]' <<<"$req")" "You are terse." \
	    "$k: native: system passed as it came"
	is "$(jx 'd["body"]["model"]' <<<"$req")" claude-mock \
	    "$k: native: the candidate's upstream model"
	is "$(jx 'd["body"]["max_tokens"]' <<<"$req")" 200 \
	    "$k: native: max_tokens of the client (under the model's cap)"

	# --- streamed text --------------------------------------------------------
	for m in claude-in gpt-in gem-in; do
		sdk "$m" stream
		is "$(jx 'd["text"]' <<<"$OUT")" "tok0 tok1 tok2 " \
		    "$k: $m: streamed text"
		is "$(jx '" ".join(d["events"])' <<<"$OUT")" \
		    "message_start content_block_start:text content_block_delta:text_delta content_block_delta:text_delta content_block_delta:text_delta content_block_stop message_delta message_stop" \
		    "$k: $m: Anthropic's event sequence"
		row=$(last_row "$K_ID")
		is "$(jx 'd["completion_tokens"]' <<<"$row")" \
		    "$(jx 'd["message"]["usage"]["output_tokens"]' <<<"$OUT")" \
		    "$k: $m: streamed output tokens agree"
		is "$(jx 'd["prompt_tokens"]' <<<"$row")" \
		    "$(jx 'd["message"]["usage"]["input_tokens"]' <<<"$OUT")" \
		    "$k: $m: streamed input tokens agree"
		is "$(jx 'd["stream"]' <<<"$row")" true "$k: $m: a streamed row"
		cost_ok "$m" "$row" "$OUT" "$k: $m: streamed: cost of the SDK's usage"
	done
	# A provider's reasoning becomes a thinking block before the text.
	for m in gpt-in:reasoning gem-in:thought; do
		SAY="think MOCK{${m#*:}=1}" sdk "${m%%:*}" stream
		like "$(jx '" ".join(d["events"])' <<<"$OUT")" \
		    '^message_start content_block_start:thinking (content_block_delta:thinking_delta )+content_block_stop content_block_start:text ' \
		    "$k: ${m%%:*}: reasoning streamed as a thinking block"
		like "$(jx 'd["message"]["content"][0]["thinking"]' <<<"$OUT")" \
		    '^think0 think1' "$k: ${m%%:*}: ... its text"
	done
	# The ping Anthropic sends after the first block start, on the wire.
	post /v1/messages '{"model":"claude-in","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}' \
	    -H "x-api-key: $K"
	like "$BODY" $'event: content_block_start\ndata: [^\n]*\n\nevent: ping\n' \
	    "$k: ping after the first content_block_start"
	unlike "$BODY" '\[DONE\]' "$k: no [DONE] in an Anthropic stream"

	# Native and no output guard: the upstream's own answer is relayed
	# (its stop_sequence, its padded message_stop), the model ours.
	post /v1/messages '{"model":"claude-in","max_tokens":50,"stream":true,"stop_sequences":["tok2"],"messages":[{"role":"user","content":"x MOCK{stop_reason=stop_sequence}"}]}' \
	    -H "x-api-key: $K"
	like "$BODY" '"stop_reason":"stop_sequence","stop_sequence":"tok2"' \
	    "$k: native stream relayed: the upstream's stop_sequence"
	like "$BODY" 'data: \{"type":"message_stop" +\}' \
	    "$k: native stream relayed: the upstream's message_stop as it came"
	like "$BODY" '"model":"claude-in"' "$k: native stream relayed: model ours"
	unlike "$BODY" 'claude-mock' "$k: ... never the upstream's name"
	post /v1/messages '{"model":"claude-in","max_tokens":50,"stop_sequences":["tok2"],"messages":[{"role":"user","content":"x MOCK{stop_reason=stop_sequence}"}]}' \
	    -H "x-api-key: $K"
	is "$(jx '[d["stop_reason"], d["stop_sequence"], d["model"]]' <<<"$BODY")" \
	    '["stop_sequence", "tok2", "claude-in"]' \
	    "$k: native message relayed: stop_sequence kept, model ours"
	# An output guard (restore) reads the answer: translated, not relayed.
	post /v1/messages '{"model":"claude-in","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"x jane.roe@example.com"}]}' \
	    -H "x-api-key: $R"
	like "$BODY" 'event: message_stop' "$k: guarded native stream: complete"
	unlike "$BODY" 'data: \{"type":"message_stop" +\}' \
	    "$k: guarded native stream: the gateway's events, not relayed"

	# --- a streamed tool call round trip ---------------------------------------
	for m in claude-in gpt-in gem-in; do
		sdk "$m" tools
		is "$(jx '[b["type"] for b in d["first"]["content"]][-1]' <<<"$OUT")" \
		    tool_use "$k: $m: the tool_use block assembled"
		is "$(jx '[b for b in d["first"]["content"] if b["type"] == "tool_use"][0]["name"]' <<<"$OUT")" \
		    get_weather "$k: $m: tool name"
		like "$(jx '[b for b in d["first"]["content"] if b["type"] == "tool_use"][0]["input"]' <<<"$OUT")" \
		    '"city"|"location"' "$k: $m: tool input parsed from input_json_delta"
		is "$(jx 'd["first"]["stop_reason"]' <<<"$OUT")" tool_use \
		    "$k: $m: stop_reason tool_use"
		like "$(jx '" ".join(d["events"])' <<<"$OUT")" \
		    'content_block_start:tool_use (content_block_delta:input_json_delta )+content_block_stop message_delta message_stop$' \
		    "$k: $m: tool_use block streamed with input_json_delta"
		is "$(jx 'd["second"]["type"]' <<<"$OUT")" message \
		    "$k: $m: the answer to the tool result"
		# What the tool result became upstream, in each protocol.
		req=$(mock_log | jx 'json.dumps(d["log"][-1]["body"])')
		case $m in
		claude-in) got=$(jx '[b["type"] for b in d["messages"][2]["content"]]' <<<"$req") ;;
		gpt-in) got=$(jx '[d["messages"][-1][x] for x in ("role", "content")]' <<<"$req") ;;
		gem-in) got=$(jx '[p["functionResponse"]["name"] for p in d["contents"][-1]["parts"]]' <<<"$req") ;;
		esac
		is "$got" "$(case $m in claude-in) echo '["tool_result"]' ;;
		    gpt-in) echo '["tool", "20C and sunny"]' ;;
		    gem-in) echo '["get_weather"]' ;; esac)" \
		    "$k: $m: the tool result reached the upstream"
	done
	req=$(mock_last '/messages$')
	is "$(jx 'd["body"]["tools"][0]["input_schema"]["required"]' <<<"$req")" \
	    '["city"]' "$k: native: tools with input_schema"

	# --- errors in Anthropic's shape ------------------------------------------
	KEY=sk-wrong sdk claude-in text
	is "$(jx 'd["status"]' <<<"$OUT")" 401 "$k: a wrong x-api-key: 401"
	is "$(jx 'd["type"]' <<<"$OUT")" authentication_error \
	    "$k: ... authentication_error"
	sdk claude-nope text
	is "$(jx 'd["status"]' <<<"$OUT")" 404 "$k: unknown model: 404"
	is "$(jx 'd["type"]' <<<"$OUT")" not_found_error "$k: ... not_found_error"
	post /v1/messages '{"model":"claude-in","messages":[{"role":"user","content":"hi"}]}' \
	    -H "x-api-key: $K"
	is "$STATUS" 400 "$k: no max_tokens: 400"
	is "$(jx 'd["type"] + " " + d["error"]["type"]' <<<"$BODY")" \
	    "error invalid_request_error" "$k: ... in Anthropic's shape"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" max_tokens \
	    "$k: ... naming max_tokens"
	post /v1/messages '{"model":' -H "x-api-key: $K"
	is "$STATUS" 400 "$k: bad JSON: 400"
	is "$(jx 'd["error"]["type"]' <<<"$BODY")" invalid_request_error \
	    "$k: ... invalid_request_error"
	post /v1/messages '{"model":"claude-in","max_tokens":5,"messages":[]}'
	is "$STATUS" 401 "$k: no key: 401"
	is "$(jx 'd["type"] + " " + d["error"]["type"]' <<<"$BODY")" \
	    "error authentication_error" "$k: ... authentication_error"
	post /v1/messages '{"model":"claude-in","max_tokens":5,"messages":[{"role":"system","content":"x"}]}' \
	    -H "x-api-key: $K"
	is "$(jx 'd["error"]["type"]' <<<"$BODY")" invalid_request_error \
	    "$k: a system role in messages: invalid_request_error"
	post /v1/messages '{"model":"claude-in","max_tokens":5,"messages":[{"role":"user","content":"x MOCK{status=529}"}]}' \
	    -H "x-api-key: $K"
	is "$STATUS/$(jx 'd["error"]["type"]' <<<"$BODY")" \
	    "529/overloaded_error" "$k: upstream 529: overloaded_error"
	# Bearer is accepted as well as x-api-key (ANTHROPIC_AUTH_TOKEN).
	KEY=$K sdk gpt-in text token
	is "$(jx 'd["message"]["content"][0]["text"]' <<<"$OUT")" \
	    "tok0 tok1 tok2 " "$k: Authorization: Bearer accepted"
	# An error after the stream began: event: error, no message_stop.
	post /v1/messages '{"model":"claude-in","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"x MOCK{stream_error=2}"}]}' \
	    -H "x-api-key: $K"
	like "$BODY" $'event: error\ndata: \\{"type":"error","error":\\{"type":"overloaded_error"' \
	    "$k: stream failure: event: error with the upstream's type"
	unlike "$BODY" message_stop "$k: ... and no message_stop"

	# --- the policy step: redacted before it leaves, native and translated ----
	for m in claude-in gpt-in gem-in; do
		mock_clear
		KEY=$R SAY="mail jane.roe@example.com please" sdk "$m" text
		is "$(jx 'd["message"]["type"]' <<<"$OUT")" message \
		    "$k: $m: redact policy: served"
		body=$(mock_log | jx 'json.dumps([e["body"] for e in d["log"]])')
		unlike "$body" 'jane\.roe@example\.com' \
		    "$k: $m: redact: no e-mail in the upstream body"
		like "$body" 'mail ' "$k: $m: redact: the rest of the text went"
	done
	# A tool_use input (native): redacted there too.
	mock_clear
	post /v1/messages '{"model":"claude-in","max_tokens":50,"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"send","input":{"to":"jane.roe@example.com"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sent to jane.roe@example.com"}]}]}' \
	    -H "x-api-key: $R"
	is "$STATUS" 200 "$k: redact: tool use and result served"
	body=$(mock_log | jx 'json.dumps([e["body"] for e in d["log"]])')
	unlike "$body" 'jane\.roe@example\.com' \
	    "$k: redact: no e-mail in a native tool_use input or tool_result"
	like "$body" '"name": "send"' "$k: ... the tool_use block went natively"

	on_first_server || return 0

	# --- a Claude Code shaped request (native) ---------------------------------
	mock_clear
	post '/v1/messages?beta=true' "$(cat <<'EOB'
{"model":"claude-in","max_tokens":32000,"stream":true,
 "system":[{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude.","cache_control":{"type":"ephemeral"}},
           {"type":"text","text":"Working directory: /src","cache_control":{"type":"ephemeral"}}],
 "messages":[{"role":"user","content":[{"type":"text","text":"<system-reminder>ctx</system-reminder>"},
   {"type":"text","text":"list the files","cache_control":{"type":"ephemeral"}}]}],
 "tools":[{"name":"Bash","description":"Run a command","input_schema":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}}],
 "tool_choice":{"type":"auto"},
 "metadata":{"user_id":"user_abc_account__session_123"},
 "thinking":{"type":"enabled","budget_tokens":1024},
 "temperature":1}
EOB
)" -H "x-api-key: $K" -H 'anthropic-version: 2023-06-01' \
	    -H 'anthropic-beta: claude-code-20250219,interleaved-thinking-2025-05-14'
	is "$STATUS" 200 "$k: Claude Code request: 200"
	like "$BODY" 'event: message_stop' "$k: Claude Code request: streamed to its end"
	req=$(mock_last '/messages$')
	is "$(jx 'd["body"]["system"][0]["cache_control"]' <<<"$req")" \
	    '{"type": "ephemeral"}' "$k: native: system blocks with cache_control intact"
	is "$(jx 'd["body"]["messages"][0]["content"][1]["cache_control"]' <<<"$req")" \
	    '{"type": "ephemeral"}' "$k: native: message block cache_control intact"
	is "$(jx 'd["body"]["thinking"]' <<<"$req")" \
	    '{"type": "enabled", "budget_tokens": 1024}' "$k: native: thinking intact"
	is "$(jx 'd["body"]["metadata"]["user_id"]' <<<"$req")" \
	    user_abc_account__session_123 "$k: native: metadata intact"
	is "$(jx 'd["body"]["tool_choice"]' <<<"$req")" '{"type": "auto"}' \
	    "$k: native: tool_choice intact"
	is "$(jx 'd["body"]["max_tokens"]' <<<"$req")" 1000 \
	    "$k: native: max_tokens capped by the model's max_tokens"
	is "$(jx 'd["headers"].get("anthropic-beta") or d["headers"].get("Anthropic-Beta")' <<<"$req")" \
	    "claude-code-20250219,interleaved-thinking-2025-05-14" \
	    "$k: native: anthropic-beta passed on"
	# The same request to a translated model.
	post /v1/messages "$(jx 'json.dumps(dict(d["body"], model="gpt-in"))' <<<"$req")" \
	    -H "x-api-key: $K" -H 'anthropic-beta: claude-code-20250219'
	is "$STATUS" 200 "$k: Claude Code request to an OpenAI-backed model: 200"
	req=$(mock_last 'chat/completions$')
	is "$(jx 'd["body"]["messages"][0]["role"]' <<<"$req")" system \
	    "$k: translated: system blocks became a system message"
	is "$(jx 'd["body"]["tools"][0]["function"]["name"]' <<<"$req")" Bash \
	    "$k: translated: tools became functions"
	is "$(jx 'd["body"]["user"]' <<<"$req")" user_abc_account__session_123 \
	    "$k: translated: metadata.user_id became user"

	# --- count_tokens: exact from Anthropic, else an estimate ---------------------
	sdk claude-in count
	is "$(jx 'd["count"]["input_tokens"]' <<<"$OUT")" 5 \
	    "$k: count_tokens: the provider's exact count"
	is "$(jx 'd["count"].get("estimated")' <<<"$OUT")" null \
	    "$k: count_tokens: exact is not marked estimated"
	is "$(jx 'd["path"]' <<<"$(mock_last count_tokens)")" \
	    /v1/messages/count_tokens "$k: count_tokens forwarded to the provider's"
	sdk gpt-in count
	like "$(jx 'd["count"]["input_tokens"]' <<<"$OUT")" '^[1-9][0-9]*$' \
	    "$k: count_tokens: an estimate for an OpenAI-backed model"
	is "$(jx 'd["count"]["estimated"]' <<<"$OUT")" true \
	    "$k: count_tokens: ... marked estimated"
	sdk claude-nope count
	is "$(jx 'd["status"] , d["type"]' <<<"$OUT")" '[404, "not_found_error"]' \
	    "$k: count_tokens: unknown model 404 not_found_error"

	# --- hostile bodies: a 200 or an Anthropic 400, never a crash or a 500 ------
	local b n=0
	while IFS= read -r b; do
		n=$((n + 1))
		for p in /v1/messages /v1/messages/count_tokens; do
			post "$p" "$b" -H "x-api-key: $K"
			if [ "$STATUS" = 200 ] || { [ "$STATUS" = 400 ] &&
			    [ "$(jx 'd["type"] + "/" + d["error"]["type"]' <<<"$BODY")" = error/invalid_request_error ]; }; then
				pass "$k: hostile body $n on $p: $STATUS"
			else
				fail "$k: hostile body $n on $p: $STATUS" "$b" "$BODY"
			fi
		done
	done <<'EOB'
[]
"x"
{"model":"claude-in","max_tokens":5,"messages":[1,"x",null]}
{"model":"gpt-in","max_tokens":5,"messages":[{"role":"user","content":[1,null,{"type":"tool_result"},{"type":"image","source":"x"},{"type":"text","text":5},{"type":"image","source":{"type":"base64"}}]}]}
{"model":"claude-in","max_tokens":5,"system":5,"messages":[{"role":"user","content":"x"}]}
{"model":"claude-in","max_tokens":5,"system":[1,{"type":"text"},{"type":"text","text":["x"]}],"messages":[{"role":"user","content":"x"}]}
{"model":5,"max_tokens":5,"messages":[{"role":"user","content":"x"}]}
{"model":"claude-in","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}
{"model":"claude-in","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]}
{"model":"gpt-in","max_tokens":5,"tools":[1,{"name":5,"input_schema":1},{"name":"f","input_schema":{}}],"tool_choice":"any","messages":[{"role":"user","content":"x"}]}
{"model":"gpt-in","max_tokens":5,"tools":{},"messages":[{"role":"user","content":"x"}]}
{"model":"gem-in","max_tokens":5,"tool_choice":{"type":"tool"},"tools":[{"name":"f","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"x"}]}
{"model":"gpt-in","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use"},{"type":"tool_use","id":5,"name":[],"input":"notjson"}]},{"role":"user","content":[{"type":"tool_result","content":7}]}]}
{"model":"gpt-in","max_tokens":5,"metadata":"x","stop_sequences":"END","stream":"yes","messages":[{"role":"user","content":"x"}]}
{"model":"claude-in","max_tokens":5,"messages":[{"role":"user","content":{}}]}
{"model":"claude-in","max_tokens":5,"messages":[{"role":"user","content":"x\u0000y"}],"system":"\ud800"}
EOB

	# --- cache reads: the row's prompt is the SDK's input plus the cache's ------
	for st in false true; do
		post /v1/messages '{"model":"claude-in","max_tokens":50,"stream":'$st',"messages":[{"role":"user","content":"x MOCK{cached=4}"}]}' \
		    -H "x-api-key: $K"
		row=$(last_row "$K_ID")
		if [ $st = true ]; then
			u=$(grep '^data: {"type":"message_start"' <<<"$BODY" | cut -c7- |
			    jx 'json.dumps(d["message"]["usage"])')
		else
			u=$(jx 'json.dumps(d["usage"])' <<<"$BODY")
		fi
		is "$(jx '[d["input_tokens"] + d["cache_read_input_tokens"], d["cache_read_input_tokens"]]' <<<"$u")" \
		    "$(jx '[d["prompt_tokens"], d["cached_tokens"]]' <<<"$row")" \
		    "$k: stream $st: cache reads: the row's prompt and cached tokens are the client's"
	done

	# --- metrics: the route has its own label --------------------------------------
	like "$(gw_curl "$GW_URL/metrics")" 'route="messages"' \
	    "$k: metrics: route=\"messages\""

	# --- a client that leaves mid-stream is billed --------------------------------
	mock_clear
	before=$(admin usage --rows --key "$K_ID" | wc -l)
	gw_sse -H "Authorization: Bearer $K" --leave-after 3 \
	    -d '{"model":"claude-slow","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"long"}]}' \
	    "$GW_URL/v1/messages" >/dev/null 2>&1
	wait_until 30 rows_beyond "$K_ID" "$before"
	row=$(last_row "$K_ID")
	is "$(jx 'd["served"]' <<<"$row")" claude-slow "$k: left mid-stream: a usage row"
	like "$(jx 'd["cost_micro_usd"]' <<<"$row")" '^[1-9]' "$k: left mid-stream: billed"
	is "$(jx 'd["client_aborted"]' <<<"$row")" true "$k: left mid-stream: client_aborted"
}

for_each_server "$CONF" scenarios

# --- valgrind over CGI requests of the new routes ------------------------------
mc() {	# NAME BODY [PATH]: one CGI request of the route under memcheck
	local log=$TMPDIR_T/mc.$1 out
	printf '%s' "$2" >"$TMPDIR_T/mc.json"
	out=$(export REQUEST_METHOD=POST REQUEST_URI=${3:-/v1/messages} \
	    CONTENT_LENGTH=$(wc -c <"$TMPDIR_T/mc.json") HTTP_X_API_KEY="$K" \
	    LLMGATE_CONFIG="$CONF"; memcheck "$log" "$LLMGATE" <"$TMPDIR_T/mc.json" \
	    2>"$log.stderr")
	is "$?" 0 "memcheck $1: exit status"
	ok "memcheck $1: no errors, nothing lost" memcheck_clean "$log" ||
	    diag "$(head -c 3000 "$log")"
	like "$out" "^Status: ${4:-200}" "memcheck $1: answered ${4:-200}"
}
mc native-stream '{"model":"claude-in","max_tokens":50,"stream":true,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"weather? MOCK{tool=1}"}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}'
mc translated '{"model":"gpt-in","max_tokens":50,"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"r"}]}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}'
mc translated-stream '{"model":"gem-in","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"weather? MOCK{tool=1}"}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}'
mc bad '{"model":"claude-in","messages":"x"}' /v1/messages 400
mc count '{"model":"claude-in","messages":[{"role":"user","content":"hi"}]}' /v1/messages/count_tokens
mc estimate '{"model":"gem-in","messages":[{"role":"user","content":"hi"}]}' /v1/messages/count_tokens
done_testing
