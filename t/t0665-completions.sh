#!/bin/bash
# t0665-completions.sh: POST /v1/completions (the legacy text completion,
# fill-in-the-middle) under every front end: forwarded natively only to
# openai-type providers with completions = on (a model with none gets a
# clear 400), prompt and suffix forwarded, streamed chunks relayed as they
# come, the official openai npm client's completions.create, usage rows
# and cost, fallback within completions-capable candidates only, errors
# in the OpenAI shape, a redact policy over prompt and suffix, a client
# leaving mid-stream billed, and valgrind over a few CGI requests.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0665
export LLMGATE_MASTER_KEY=sk-master-t0665-key
CONF=$TMPDIR_T/llmgate.ini
write_mock_gateway "$CONF"
cat >>"$CONF" <<EOF
[provider mock]
completions = on

[provider chatonly]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[provider anth]
type = anthropic
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[model mock-ok]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00

[model mock-nofim]
provider = mock
upstream = mock-nofim
completions = off
input_price = 1.00
output_price = 2.00

[model chat-only]
provider = chatonly
upstream = chat-only-up
input_price = 1.00
output_price = 2.00

[model claude-x]
provider = anth
upstream = claude-mock
completions = on
input_price = 1.00
output_price = 2.00

[model chat-fim]
provider = chatonly
upstream = chat-fim-up
completions = on
input_price = 1.00
output_price = 2.00

; broken upstream first; its fallbacks: one without completions (left
; out of the plan), then one with
[model fb]
provider = mock
upstream = mock@status=503
fallback = chat-only mock-ok
input_price = 1.00
output_price = 2.00

[agent red]
policy = redactall

[agent outred]
policy = outredact

[agent outstop]
policy = outstop

[policy outredact]
pii = log
output = redact

[policy outstop]
pii = log
output = stop

[policy redactall]
pii = redact
EOF
setup_sdk

row() {	# REQUEST-ID EXPR: one row of --rows by request id, as EXPR's value
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

checks() {
	local k=$SERVER_KIND out rid
	out=$(node "$SDK/completions.mjs" "$GW_URL/v1" "$LLMGATE_MASTER_KEY" mock-ok chat-only 2>&1)
	f() { jx "$1" <<<"$out"; }
	is "$(f 'd["text"]')" "def add(a, b):|    return c" "$k: sdk: FIM: prompt and suffix forwarded ($(head -c 200 <<<"$out"))"
	is "$(f '[d["object"], d["model"]]')" '["text_completion", "mock-ok"]' "$k: sdk: object and model"
	is "$(f 'd["usage"]["completion_tokens"]')" 9 "$k: sdk: usage"
	is "$(f 'd["stream_text"]')" "tok0 tok1 tok2 tok3 " "$k: sdk: streamed text assembled"
	is "$(f 'd["stream_finish"]')" stop "$k: sdk: streamed finish_reason"
	is "$(f 'd["stream_usage"]["completion_tokens"]')" 4 "$k: sdk: usage chunk when asked for"
	is "$(f '[d["error_status"], d["error_code"]]')" '[400, "unsupported_model"]' "$k: sdk: a model without completions: 400"
	like "$(f 'd["error_message"]')" "model 'chat-only' does not offer /v1/completions" "$k: sdk: ... saying so"

	# the upstream got the body natively: upstream id, prompt, suffix, our limit
	mock_clear
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"mock-ok","prompt":["int main("],"suffix":"}\n","max_tokens":7,"temperature":0.1,"stop":["\n\n"]}'
	is "$STATUS" 200 "$k: curl: 200"
	is "$(mock_log | jx '(lambda e: [e["path"], e["body"]["model"], e["body"]["prompt"], e["body"]["suffix"], e["body"]["max_tokens"], e["body"]["stop"]])(d["log"][-1])')" \
	    '["/v1/completions", "mock", ["int main("], "}\n", 7, ["\n\n"]]' "$k: forwarded natively"
	rid=$(hdr x-request-id)
	ok "$k: the row is written" wait_until 10 row_status_is "$rid" 200
	is "$(row "$rid" '[d["prompt_tokens"], d["completion_tokens"], d["cost_micro_usd"], d["estimated"]]')" \
	    "[3, 3, 9, False]" "$k: usage row: the upstream's tokens, cost 3*1 + 3*2 micro-USD"

	# streamed: relayed as the upstream sends, no usage chunk unless asked
	gw_sse -H 'Content-Type: application/json' \
	    -d '{"model":"mock-ok","stream":true,"prompt":"x MOCK{chunks=5,delay=0.3}"}' \
	    "$GW_URL/v1/completions" >"$TMPDIR_T/s.out" 2>&1
	is "$(grep -c '"text":"tok' "$TMPDIR_T/s.out")" 5 "$k: stream: five text chunks"
	is "$(grep -c '"usage"' "$TMPDIR_T/s.out")" 0 "$k: stream: no usage chunk (not asked for)"
	is "$(tail -n 1 "$TMPDIR_T/s.out" | cut -d' ' -f2-)" "data: [DONE]" "$k: stream: ends with [DONE]"
	ok_streamed "$k: stream" "$(cat "$TMPDIR_T/s.out")" 0.5 '"text":"tok'

	# refused, in the OpenAI shape
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"mock-nofim","prompt":"x"}'
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "400 unsupported_model" "$k: [model] completions = off: 400"
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"claude-x","prompt":"x"}'
	is "$STATUS $(jx 'd["error"]["param"]' <<<"$BODY")" "400 model" "$k: an anthropic model, even with completions = on: 400"
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"nope-zzz","prompt":"x"}'
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "404 model_not_found" "$k: unknown model: 404"
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"mock-ok","prompt":[[1,2,3]]}'
	is "$STATUS $(jx 'd["error"]["param"]' <<<"$BODY")" "400 prompt" "$k: token arrays refused: 400 param prompt"
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"mock-ok","prompt":"x","echo":true}'
	is "$STATUS $(jx 'd["error"]["param"]' <<<"$BODY")" "400 echo" "$k: echo true refused"
	is "$(jx 'sorted(d["error"].keys())' <<<"$BODY")" '["code", "message", "param", "type"]' "$k: ... OpenAI error shape"
}

once_checks() {
	local rid n out log
	# hostile and malformed requests: a 400 naming the member, nothing sent
	mock_clear
	local body
	for body in '{"model":"mock-ok"}' '{"model":"mock-ok","prompt":42}' \
	    '{"model":"mock-ok","prompt":["a","b"]}' '{"model":"mock-ok","prompt":[]}' \
	    '{"model":"mock-ok","prompt":"x","suffix":7}' '{"model":"mock-ok","prompt":"x","stream":"yes"}' \
	    '{"model":"mock-ok","prompt":"x","max_tokens":-1}' '{"model":"mock-ok","prompt":"x","n":0}' \
	    '{"model":"mock-ok","prompt":"x","best_of":2}' '{"prompt":"x"}' '"x"'; do
		api "$LLMGATE_MASTER_KEY" POST /v1/completions "$body"
		is "$STATUS $(jx 'd["error"]["type"]' <<<"$BODY")" "400 invalid_request_error" "hostile: $body -> 400"
	done
	is "$(mock_log | jx 'd["total"]')" 0 "hostile: nothing reached the upstream"
	# a member given twice: the upstream gets the one value the policy saw
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"mock-ok","prompt":"a@b.example","prompt":"y MOCK{say=1}"}'
	is "$STATUS $(jx 'd["choices"][0]["text"]' <<<"$BODY")" "200 y|" "a duplicate member: the last one, checked and sent"
	is "$(mock_log | jx 'd["log"][-1]["body"]["prompt"]')" "y MOCK{say=1}" "... the upstream got that one only"

	# [model] completions = on on a provider without it
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"chat-fim","prompt":"x"}'
	is "$STATUS" 200 "[model] completions = on overrides its provider's off"

	# fallback: the broken one, then past chat-only (left out) to mock-ok
	mock_clear
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"fb","prompt":"x"}'
	is "$STATUS $(hdr x-llmgate-model)" "200 mock-ok" "fallback: served by mock-ok"
	is "$(mock_log | jx '[e["body"]["model"] for e in d["log"]]')" '["mock@status=503", "mock"]' \
	    "fallback: chat-only, without completions, never asked"

	# mid-stream error in-band, then [DONE]
	gw_sse -H 'Content-Type: application/json' \
	    -d '{"model":"mock-ok","stream":true,"prompt":"x MOCK{stream_error=2}"}' \
	    "$GW_URL/v1/completions" >"$TMPDIR_T/e.out" 2>&1
	like "$(grep '"error"' "$TMPDIR_T/e.out")" '"message":"mock stream error"' "mid-stream error relayed in-band"
	is "$(tail -n 1 "$TMPDIR_T/e.out" | cut -d' ' -f2-)" "data: [DONE]" "... then [DONE]"

	# redact over prompt and suffix: the upstream never sees the values
	mock_clear
	BODY=$(curl -sS -H "Authorization: Bearer $LLMGATE_MASTER_KEY" -H 'X-Agent: red' \
	    -H 'Content-Type: application/json' \
	    --data-binary '{"model":"mock-ok","prompt":"# mail carol.hidden@example.org MOCK{say=1}","suffix":"# or dave.hidden@example.net"}' \
	    "$GW_URL/v1/completions")
	log=$(mock_log | jx 'json.dumps(d["log"][-1]["body"])')
	unlike "$log" 'carol\.hidden|dave\.hidden' "redact: the upstream never saw prompt or suffix values"
	like "$log" 'EMAIL.*EMAIL' "redact: placeholders in both"
	is "$(jx 'd["choices"][0]["text"]' <<<"$BODY")" "# mail carol.hidden@example.org|# or dave.hidden@example.net" \
	    "redact: the answer restored for the client"

	# the answer's side: output detectors over each choice's text
	BODY=$(curl -sS -H "Authorization: Bearer $LLMGATE_MASTER_KEY" -H 'X-Agent: outred' \
	    -H 'Content-Type: application/json' \
	    --data-binary '{"model":"mock-ok","prompt":"write to erin.out@example.org MOCK{say=1}"}' \
	    "$GW_URL/v1/completions")
	out=$(jx 'd["choices"][0]["text"]' <<<"$BODY")
	unlike "$out" 'erin\.out@' "output = redact: the address is not in the answer ($out)"
	gw_sse -H 'X-Agent: outred' -H 'Content-Type: application/json' \
	    -d '{"model":"mock-ok","stream":true,"prompt":"write to erin.out@example.org MOCK{say=1,piece=2}"}' \
	    "$GW_URL/v1/completions" >"$TMPDIR_T/or.out" 2>&1
	out=$(grep -o '"text":"[^"]*"' "$TMPDIR_T/or.out" | sed 's/"text":"//; s/"$//' | tr -d '\n')
	unlike "$out" 'erin\.out@' "output = redact, streamed in 2-byte pieces: never the address ($out)"
	is "$(tail -n 1 "$TMPDIR_T/or.out" | cut -d' ' -f2-)" "data: [DONE]" "... and the stream ends normally"
	gw_sse -H 'X-Agent: outstop' -H 'Content-Type: application/json' \
	    -d '{"model":"mock-ok","stream":true,"prompt":"write to erin.out@example.org MOCK{say=1,piece=2}"}' \
	    "$GW_URL/v1/completions" >"$TMPDIR_T/os.out" 2>&1
	out=$(grep -o '"text":"[^"]*"' "$TMPDIR_T/os.out" | sed 's/"text":"//; s/"$//' | tr -d '\n')
	unlike "$out" 'erin\.out@' "output = stop, streamed: never the address ($out)"
	like "$(grep '"error"' "$TMPDIR_T/os.out")" '"code":"policy_violation"' "output = stop: the stream ends with policy_violation"
	api "$LLMGATE_MASTER_KEY" POST /v1/completions '{"model":"mock-ok","prompt":"write to erin.out@example.org MOCK{say=1}"}'
	BODY=$(curl -sS -H "Authorization: Bearer $LLMGATE_MASTER_KEY" -H 'X-Agent: outstop' \
	    -H 'Content-Type: application/json' \
	    --data-binary '{"model":"mock-ok","prompt":"write to erin.out@example.org MOCK{say=1}"}' \
	    "$GW_URL/v1/completions")
	is "$(jx 'd["choices"][0]["finish_reason"]' <<<"$BODY")" content_filter "output = stop, whole: finish_reason content_filter"
	unlike "$(jx 'd["choices"][0]["text"]' <<<"$BODY")" 'erin\.out@' "output = stop, whole: never the address"

	# random, often malformed bodies: a 200 or a 4xx in the OpenAI shape, never worse
	local seed=$RANDOM
	out=$(python3 "$top_srcdir/t/route-property.py" "$GW_URL" "$LLMGATE_MASTER_KEY" completions mock-ok 300 "$seed" 2>&1)
	is "$?" 0 "property: 300 random bodies (seed $seed): 200 or an OpenAI-shaped 4xx ($(tail -n 1 <<<"$out"))" ||
	    diag "$(head -c 3000 <<<"$out")"

	# metrics: the route's own label
	ok "metrics: llm_requests_total has route=\"completions\"" \
	    wait_until 10 sh -c "curl -sS -H 'Authorization: Bearer $LLMGATE_MASTER_KEY' '$GW_URL/metrics' | grep -q '^llm_requests_total{.*route=\"completions\"'"

	# concurrency: 16 requests at once over both routes, streamed or not,
	# on one prepaid key: all answered, each billed once, the ledger is the
	# rows, nothing stays reserved
	create_key CK --name conc --prepaid
	admin topup conc 5 >/dev/null
	local i path body pids=()
	for i in $(seq 1 16); do
		case $((i % 4)) in
		0) path=/v1/completions body='{"model":"mock-ok","stream":true,"prompt":"c'$i' MOCK{chunks=20,delay=0.05}"}' ;;
		1) path=/v1/completions body='{"model":"mock-ok","prompt":"c'$i'","suffix":"s"}' ;;
		2) path=/v1/responses body='{"model":"mock-ok","stream":true,"input":"c'$i' MOCK{chunks=20,delay=0.05}"}' ;;
		3) path=/v1/responses body='{"model":"mock-ok","input":"c'$i'"}' ;;
		esac
		curl -sS --max-time 60 -o "$TMPDIR_T/conc.$i" -w '%{http_code}' \
		    -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' \
		    --data-binary "$body" "$GW_URL$path" >"$TMPDIR_T/conc.$i.status" &
		pids+=($!)
	done
	wait "${pids[@]}"
	is "$(for i in "$TMPDIR_T"/conc.*.status; do cat "$i"; echo; done | sort | uniq -c | awk '{print $1 "x" $2}')" 16x200 \
	    "concurrency: 16 answered 200"
	is "$(grep -l 'response.completed' "$TMPDIR_T"/conc.* | wc -l) $(grep -l 'data: \[DONE\]' "$TMPDIR_T"/conc.* | wc -l)" \
	    "4 4" "concurrency: every stream complete"
	conc_rows() { [ "$(admin usage --rows --key conc | grep -c '"status": *200')" = 16 ]; }
	ok "concurrency: 16 usage rows" wait_until 20 conc_rows
	out=$(admin usage --rows --key conc | python3 -c 'import json, sys; print(sum(json.loads(l)["cost_micro_usd"] for l in sys.stdin if l.strip()))')
	is "$(admin balance conc --json | jx '[d["balance_micro_usd"], d["reserved_micro_usd"]]')" "[$((5000000 - out)), 0]" \
	    "concurrency: balance = top-up - the rows' costs ($out), nothing reserved"
	is "$(admin ledger conc --json | jx 'len([e for e in d["data"] if e["type"] == "debit"])')" 16 \
	    "concurrency: one ledger debit per request"

	# the process serving a stream SIGKILLed mid-stream: reclaimed and
	# billed (the prompt estimate and the progress recorded), once
	create_key VK --name victim --prepaid
	admin topup victim 5 >/dev/null
	curl -sS -N --max-time 60 -D "$TMPDIR_T/v.hdr" -o "$TMPDIR_T/v.body" \
	    -H "Authorization: Bearer $VK" -H 'Content-Type: application/json' \
	    --data-binary '{"model":"mock-ok","stream":true,"prompt":"long MOCK{chunks=60,delay=0.2}"}' \
	    "$GW_URL/v1/completions" 2>/dev/null &
	local vpid=$! victims
	streamed_15() { [ "$(grep -c '^data: {' "$TMPDIR_T/v.body" 2>/dev/null)" -ge 15 ]; }
	ok "killed: the stream is under way" wait_until 30 streamed_15
	victims=$(gw_streaming_pids $(gw_binary_pids))
	ok "killed: the process serving it is found ($victims)" test -n "$victims"
	kill -9 $victims
	wait "$vpid" 2>/dev/null
	rid=$(tr -d '\r' <"$TMPDIR_T/v.hdr" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p' | tail -n 1)
	died() {	# under CGI only a request reclaims: each poll makes one
		[ "$SERVER_KIND" != cgi ] || api "$VK" GET /billing/balance
		[ "$(row "$rid" 'd["worker_died"]')" = True ]
	}
	ok "killed: its row says worker_died ($rid)" wait_until 40 died
	out=$(row "$rid" 'd["cost_micro_usd"]')
	ok "killed: billed above zero ($out)" test "$out" -gt 0
	is "$(admin balance victim --json | jx '[d["balance_micro_usd"], d["reserved_micro_usd"]]')" "[$((5000000 - out)), 0]" \
	    "killed: balance = top-up - the cost, nothing reserved"
	is "$(admin usage --rows --key victim | grep -c .)" 1 "killed: one row"

	# a client that leaves mid-stream is billed for what it was sent
	create_key KEY --name leaver --prepaid
	admin topup leaver 5 >/dev/null
	gw_sse --leave-after 4 -D "$TMPDIR_T/h" -H "Authorization: Bearer $KEY" \
	    -H 'Content-Type: application/json' \
	    -d '{"model":"mock-ok","stream":true,"prompt":"MOCK{chunks=150,delay=0.2}"}' \
	    "$GW_URL/v1/completions" >"$TMPDIR_T/leave.out" 2>&1
	rid=$(tr -d '\r' <"$TMPDIR_T/h" | awk -F': ' 'tolower($1) == "x-request-id" {print $2}')
	ok "left: the stream began ($rid)" test -n "$rid"
	ok "left: the row is written once the gateway notices" wait_until 30 row_status_is "$rid" 200
	is "$(row "$rid" '[d["client_aborted"], d["estimated"]]')" "[True, True]" "left: client_aborted, estimated"
	n=$(row "$rid" 'd["completion_tokens"]')
	ok "left: completion tokens for what was streamed ($n)" test "$n" -ge 1 -a "$n" -lt 100
	out=$(row "$rid" 'd["cost_micro_usd"]')
	ok "left: billed above zero ($out)" test "$out" -gt 0
	is "$(admin balance leaver --json | jx 'd["reserved_micro_usd"]')" 0 "left: nothing stays reserved"

	# valgrind over CGI requests
	vg() {	# NAME BODY STATUS
		local log=$TMPDIR_T/vg-$1.log
		printf '%s' "$2" >"$TMPDIR_T/vg.json"
		out=$(export REQUEST_METHOD=POST REQUEST_URI=/v1/completions \
		    CONTENT_LENGTH=$(wc -c <"$TMPDIR_T/vg.json") \
		    HTTP_AUTHORIZATION="Bearer $LLMGATE_MASTER_KEY" HTTP_X_AGENT=red \
		    LLMGATE_CONFIG="$CONF"; memcheck "$log" "$LLMGATE" <"$TMPDIR_T/vg.json" \
		    2>"$log.stderr")
		is "$?" 0 "memcheck $1: exit status"
		ok "memcheck $1: no errors, nothing lost" memcheck_clean "$log" ||
		    diag "$(head -c 3000 "$log")"
		like "$out" "^Status: $3" "memcheck $1: answered $3"
	}
	vg plain '{"model":"mock-ok","prompt":"a@b.example MOCK{say=1}","suffix":"c@d.example"}' 200
	vg stream '{"model":"mock-ok","stream":true,"prompt":"a@b.example MOCK{say=1}","suffix":"x"}' 200
	vg fail '{"model":"mock-ok","stream":true,"prompt":"x MOCK{stream_error=1}"}' 200
	vg refused '{"model":"chat-only","prompt":"x"}' 400
}

scenarios() {
	checks
	if on_first_server; then
		once_checks
	fi
}

for_each_server "$CONF" scenarios

done_testing
