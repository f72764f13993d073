#!/bin/bash
# t0660-responses.sh: POST /v1/responses (the OpenAI Responses API,
# stateless) through the one chat pipeline, under every front end: the
# official openai npm client's responses.create, plain and streamed (the
# semantic events in order, sequence numbers), a function tool call round
# trip (function_call -> function_call_output -> answer) streamed and not,
# previous_response_id and store refused, errors in the OpenAI shape,
# usage rows and cost, a redact policy over the input, the translation to
# another provider type (Anthropic), a client leaving mid-stream billed,
# and valgrind over a few CGI requests.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0660
export LLMGATE_MASTER_KEY=sk-master-t0660-key
CONF=$TMPDIR_T/llmgate.ini
write_mock_gateway "$CONF"
cat >>"$CONF" <<EOF
[provider anth]
type = anthropic
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[model mock-ok]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00

[model claude-x]
provider = anth
upstream = claude-mock
input_price = 1.00
output_price = 2.00

[agent red]
policy = redactall

[policy redactall]
pii = redact
EOF
setup_sdk

# One row of --rows output by request id, as a Python expression's value.
row() {	# REQUEST-ID EXPR
	admin usage --rows | python3 -c '
import json, sys
rid, expr = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    d = json.loads(line)
    if d["request_id"] == rid:
        print(eval(expr))
        break
else:
    print("no row")' "$1" "$2"
}
row_status_is() { [ "$(row "$1" 'd["status"]')" = "$2" ]; }

EVENTS_TEXT="response.created response.in_progress response.output_item.added response.content_part.added response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.completed"
EVENTS_TOOL="response.created response.in_progress response.output_item.added response.function_call_arguments.delta response.function_call_arguments.done response.output_item.done response.completed"

sdk_checks() {
	local k=$SERVER_KIND out
	out=$(node "$SDK/responses.mjs" "$GW_URL/v1" "$LLMGATE_MASTER_KEY" mock-ok 2>&1)
	f() { jx "$1" <<<"$out"; }
	ok "$k: sdk ran ($(head -c 300 <<<"$out"))" test "$(f 'd["plain"]["object"]')" = response
	like "$(f 'd["plain"]["id"]')" '^resp_' "$k: plain: id resp_..."
	is "$(f 'd["plain"]["status"]')" completed "$k: plain: status completed"
	is "$(f 'd["plain"]["output_text"]')" "tok0 tok1 tok2 " "$k: plain: output_text"
	is "$(f 'd["plain"]["types"]')" '["message"]' "$k: plain: one message item"
	is "$(f 'd["plain"]["model"]')" mock-ok "$k: plain: model"
	is "$(f 'd["plain"]["usage"]["output_tokens"]')" 3 "$k: plain: usage output_tokens"
	is "$(f 'd["plain"]["usage"]["total_tokens"] - d["plain"]["usage"]["input_tokens"]')" 3 \
	    "$k: plain: usage total_tokens = input + output"
	is "$(f 'd["plain"]["usage"]["input_tokens_details"]["cached_tokens"]')" 0 "$k: plain: cached_tokens"
	is "$(f '" ".join(d["stream"]["events"])')" "$EVENTS_TEXT" "$k: stream: the semantic events in order"
	is "$(f 'd["stream"]["seq_ok"]')" true "$k: stream: sequence_number 0, 1, 2, ..."
	is "$(f 'd["stream"]["text"]')" "tok0 tok1 tok2 tok3 " "$k: stream: deltas assembled"
	is "$(f 'd["stream"]["output_text"]')" "tok0 tok1 tok2 tok3 " "$k: stream: completed response's text"
	is "$(f 'd["stream"]["status"]')" completed "$k: stream: completed"
	is "$(f 'd["stream"]["usage"]["output_tokens"]')" 4 "$k: stream: usage in response.completed"
	is "$(f '[d["call"][x] for x in ("name","call_id","args","status")]')" \
	    '["get_weather", "call_mock1", {"city": "Paris"}, "completed"]' "$k: tool: function_call item"
	is "$(f '[m["role"] for m in d["answer"]]')" '["user", "assistant", "tool"]' \
	    "$k: tool round trip: the upstream got user, assistant (tool call), tool"
	is "$(f 'd["answer"][1]["tool_calls"][0]["function"]')" '{"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}' \
	    "$k: tool round trip: the call as a chat tool call"
	is "$(f '[d["answer"][2][x] for x in ("tool_call_id","content")]')" '["call_mock1", "{\"temp_c\":11}"]' \
	    "$k: tool round trip: function_call_output as the tool message"
	is "$(f '" ".join(d["tool_stream"]["events"])')" "$EVENTS_TOOL" "$k: tool stream: the events in order"
	is "$(f '[d["tool_stream"]["args"], d["tool_stream"]["args_done"]]')" '["{\"city\":\"Paris\"}", "{\"city\":\"Paris\"}"]' \
	    "$k: tool stream: arguments deltas and done"
	is "$(f '[d["tool_stream"]["item"][x] for x in ("type","name","call_id")]')" '["function_call", "get_weather", "call_mock1"]' \
	    "$k: tool stream: the item in response.completed"
	is "$(f 'd["helper"]')" '{"output_text": "tok0 tok1 ", "status": "completed"}' \
	    "$k: the SDK's responses.stream helper accepts the stream"
	is "$(f '" ".join(d["reasoning"]["events"])')" \
	    "response.created response.in_progress response.output_item.added response.reasoning_summary_part.added response.reasoning_summary_text.delta response.reasoning_summary_text.done response.reasoning_summary_part.done response.output_item.done response.output_item.added response.content_part.added response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.completed" \
	    "$k: reasoning: its item's events, then the message's"
	is "$(f '[d["reasoning"][x] for x in ("types","summary","output_text")]')" \
	    '[["reasoning", "message"], "think0 think1 ", "tok0 tok1 tok2 "]' "$k: reasoning: a reasoning item before the message"
	is "$(f '[d["previous"][x] for x in ("status","code","param")]')" '[400, "unsupported_parameter", "previous_response_id"]' \
	    "$k: previous_response_id refused: 400"
	like "$(f 'd["previous"]["message"]')" 'stateless.*whole conversation' "$k: ... saying the gateway is stateless"
	is "$(f '[d["store"][x] for x in ("status","param")]')" '[400, "store"]' "$k: store: true refused"
	is "$(f '[d["unknown"][x] for x in ("status","code")]')" '[404, "model_not_found"]' "$k: unknown model: 404 model_not_found"
}

curl_checks() {
	local k=$SERVER_KIND rid
	# usage row and cost: 1 and 2 USD per 1M tokens = 1 and 2 micro-USD a token
	api "$LLMGATE_MASTER_KEY" POST /v1/responses '{"model":"mock-ok","input":"hi MOCK{prompt_tokens=100,completion_tokens=50}"}'
	is "$STATUS" 200 "$k: curl: 200"
	rid=$(hdr x-request-id)
	is "$(jx '[d["usage"][x] for x in ("input_tokens","output_tokens","total_tokens")]' <<<"$BODY")" "[100, 50, 150]" \
	    "$k: usage from the upstream's"
	ok "$k: the row is written" wait_until 10 row_status_is "$rid" 200
	is "$(row "$rid" '[d["prompt_tokens"], d["completion_tokens"], d["cost_micro_usd"], d["estimated"]]')" \
	    "[100, 50, 200, False]" "$k: usage row: tokens and cost (100*1 + 50*2 micro-USD)"

	# errors in the OpenAI shape
	api "$LLMGATE_MASTER_KEY" POST /v1/responses '{"model":"mock-ok","input":[{"type":"web_search_call"}]}'
	is "$STATUS" 400 "$k: an unknown item type: 400"
	is "$(jx 'sorted(d["error"].keys())' <<<"$BODY")" '["code", "message", "param", "type"]' "$k: ... OpenAI error shape"
	api "$LLMGATE_MASTER_KEY" POST /v1/responses '{"model":"mock-ok","input":"x","tools":[{"type":"web_search_preview"}]}'
	is "$STATUS" 400 "$k: a hosted tool: 400"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" 'only function tools' "$k: ... says only function tools"
	is "$(jx 'd["error"]["param"]' <<<"$BODY")" tools "$k: ... param tools"
	api "$LLMGATE_MASTER_KEY" POST /v1/responses '{"model":"mock-ok","input":"x MOCK{status=400}"}'
	is "$STATUS" 400 "$k: an upstream 400: 400"
	is "$(jx 'd["error"]["type"]' <<<"$BODY")" invalid_request_error "$k: ... in the OpenAI shape"
	api "" POST /v1/responses '{"model":"mock-ok","input":"x"}'
	is "$STATUS" 401 "$k: no key: 401"

	# a stream that fails after it began: error and response.failed in-band
	gw_sse -H 'Content-Type: application/json' \
	    -d '{"model":"mock-ok","stream":true,"input":"x MOCK{stream_error=2}"}' \
	    "$GW_URL/v1/responses" >"$TMPDIR_T/fail.out" 2>&1
	is "$(grep -o '^[0-9.]* event: [a-z_.]*' "$TMPDIR_T/fail.out" | awk '{print $3}' | uniq | tail -n 3 | tr '\n' ' ')" \
	    "response.output_text.delta error response.failed " "$k: mid-stream failure: error, then response.failed"
	like "$(grep 'data: {"response"' "$TMPDIR_T/fail.out" | tail -n 1)" '"status":"failed"' "$k: ... the response's status failed"
}

once_checks() {
	local rid out n log
	# hostile and malformed requests: a 400 naming the member, nothing sent
	mock_clear
	local body
	for body in '{"model":"mock-ok","input":42}' '{"model":"mock-ok","input":[1]}' \
	    '{"model":"mock-ok","input":[]}' '{"model":"mock-ok"}' '[]' \
	    '{"model":"mock-ok","input":[{"type":"function_call_output","call_id":"x"}]}' \
	    '{"model":"mock-ok","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}' \
	    '{"model":"mock-ok","input":[{"role":"robot","content":"x"}]}' \
	    '{"model":"mock-ok","input":"x","tool_choice":{"type":"function"}}' \
	    '{"model":"mock-ok","input":"x","tools":{"type":"function"}}' \
	    '{"model":"mock-ok","input":"x","conversation":"conv_1"}' \
	    '{"model":"mock-ok","input":"x","background":true}'; do
		api "$LLMGATE_MASTER_KEY" POST /v1/responses "$body"
		is "$STATUS $(jx 'd["error"]["type"]' <<<"$BODY")" "400 invalid_request_error" "hostile: $body -> 400"
	done
	is "$(mock_log | jx 'd["total"]')" 0 "hostile: nothing reached the upstream"

	# the redact policy applies to the input items and instructions
	mock_clear
	BODY=$(curl -sS -H "Authorization: Bearer $LLMGATE_MASTER_KEY" -H 'X-Agent: red' \
	    -H 'Content-Type: application/json' --data-binary '{"model":"mock-ok","instructions":"reply to bob.secret@example.com","input":[{"role":"user","content":[{"type":"input_text","text":"mail alice.private@example.org MOCK{say=1}"}]}]}' \
	    "$GW_URL/v1/responses")
	log=$(mock_log | jx 'json.dumps(d["log"][-1]["body"])')
	unlike "$log" 'alice\.private|bob\.secret' "redact: the upstream never saw the addresses"
	like "$log" 'EMAIL' "redact: it saw placeholders ($(head -c 400 <<<"$log"))"
	is "$(jx 'd["output"][0]["content"][0]["text"]' <<<"$BODY")" "mail alice.private@example.org" \
	    "redact: the answer restored for the client"

	# translated to another provider type: Anthropic
	out=$(node "$SDK/responses.mjs" "$GW_URL/v1" "$LLMGATE_MASTER_KEY" claude-x 2>&1)
	is "$(jx 'd["plain"]["output_text"]' <<<"$out")" "tok0 tok1 tok2 " "anthropic-backed: plain text ($(head -c 300 <<<"$out"))"
	is "$(jx '" ".join(d["stream"]["events"])' <<<"$out")" "$EVENTS_TEXT" "anthropic-backed: the semantic events"
	is "$(jx '[d["call"][x] for x in ("name","call_id")]' <<<"$out")" '["get_weather", "toolu_mock1"]' \
	    "anthropic-backed: the function_call item"
	is "$(jx 'json.loads(d["tool_stream"]["args_done"])' <<<"$out")" '{"city": "Paris", "unit": "c"}' \
	    "anthropic-backed: streamed arguments"
	is "$(jx 'd["answer"]["status"]' <<<"$out")" completed \
	    "anthropic-backed: the function_call_output round trip answered"

	# random, often malformed bodies: a 200 or a 4xx in the OpenAI shape, never worse
	local seed=$RANDOM
	out=$(python3 "$top_srcdir/t/route-property.py" "$GW_URL" "$LLMGATE_MASTER_KEY" responses mock-ok 300 "$seed" 2>&1)
	is "$?" 0 "property: 300 random bodies (seed $seed): 200 or an OpenAI-shaped 4xx ($(tail -n 1 <<<"$out"))" ||
	    diag "$(head -c 3000 <<<"$out")"

	# metrics: the route's own label
	ok "metrics: llm_requests_total has route=\"responses\"" \
	    wait_until 10 sh -c "curl -sS -H 'Authorization: Bearer $LLMGATE_MASTER_KEY' '$GW_URL/metrics' | grep -q '^llm_requests_total{.*route=\"responses\"'"

	# a client that leaves mid-stream is billed for what it was sent
	create_key KEY --name leaver --prepaid
	admin topup leaver 5 >/dev/null
	gw_sse --leave-after 6 -D "$TMPDIR_T/h" -H "Authorization: Bearer $KEY" \
	    -H 'Content-Type: application/json' \
	    -d '{"model":"mock-ok","stream":true,"input":"MOCK{chunks=150,delay=0.2}"}' \
	    "$GW_URL/v1/responses" >"$TMPDIR_T/leave.out" 2>&1
	rid=$(tr -d '\r' <"$TMPDIR_T/h" | awk -F': ' 'tolower($1) == "x-request-id" {print $2}')
	ok "left: the stream began ($rid)" test -n "$rid"
	ok "left: the row is written once the gateway notices" wait_until 30 row_status_is "$rid" 200
	is "$(row "$rid" 'd["client_aborted"]')" True "left: client_aborted"
	n=$(row "$rid" 'd["completion_tokens"]')
	ok "left: completion tokens for what was streamed ($n)" test "$n" -ge 1 -a "$n" -lt 100
	out=$(row "$rid" 'd["cost_micro_usd"]')
	ok "left: billed above zero ($out)" test "$out" -gt 0
	is "$(admin balance leaver --json | jx 'd["reserved_micro_usd"]')" 0 "left: nothing stays reserved"

	# valgrind over CGI requests: plain, streamed, tool round trip, refused
	vg() {	# NAME BODY STATUS
		local log=$TMPDIR_T/vg-$1.log
		printf '%s' "$2" >"$TMPDIR_T/vg.json"
		out=$(export REQUEST_METHOD=POST REQUEST_URI=/v1/responses \
		    CONTENT_LENGTH=$(wc -c <"$TMPDIR_T/vg.json") \
		    HTTP_AUTHORIZATION="Bearer $LLMGATE_MASTER_KEY" HTTP_X_AGENT=red \
		    LLMGATE_CONFIG="$CONF"; memcheck "$log" "$LLMGATE" <"$TMPDIR_T/vg.json" \
		    2>"$log.stderr")
		is "$?" 0 "memcheck $1: exit status"
		ok "memcheck $1: no errors, nothing lost" memcheck_clean "$log" ||
		    diag "$(head -c 3000 "$log")"
		like "$out" "^Status: $3" "memcheck $1: answered $3"
	}
	vg plain '{"model":"mock-ok","instructions":"x","input":"mail a@b.example MOCK{say=1}"}' 200
	vg stream '{"model":"mock-ok","stream":true,"input":"mail a@b.example MOCK{say=1}"}' 200
	vg tools '{"model":"mock-ok","stream":true,"tools":[{"type":"function","name":"f","parameters":{}}],"input":[{"role":"user","content":"x MOCK{tool=1}"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}]}' 200
	vg fail '{"model":"mock-ok","stream":true,"input":"x MOCK{stream_error=1}"}' 200
	vg refused '{"model":"mock-ok","input":"x","previous_response_id":"resp_1"}' 400
	vg badtool '{"model":"mock-ok","input":[{"type":"function_call"}]}' 400
}

scenarios() {
	sdk_checks
	curl_checks
	if on_first_server; then
		once_checks
	fi
}

for_each_server "$CONF" scenarios

done_testing
