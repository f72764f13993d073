#!/bin/bash
# t0817-prompt-cache.sh: prompt caching, priced right, under every front end.
# - OpenAI-format requests carry cache_control on content parts, on system
#   and user messages and on tools; the Anthropic upstream receives it on
#   the same blocks, and the system as text blocks (the mock's log);
# - Anthropic's cache_creation_input_tokens are billed at cache_write_price
#   (the default 1.25 x input, or the model's own), cache_read_input_tokens
#   at cached_input_price, input_tokens at input_price: the usage row's cost
#   is that exact micro-dollar sum, rounded up once (money.h); streamed too;
# - OpenAI's prompt_tokens_details.cached_tokens, DeepSeek's
#   prompt_cache_hit_tokens and Gemini's cachedContentTokenCount likewise;
# - the client's usage says prompt_tokens (all of them), cached_tokens and
#   cache_creation_tokens; the usage row, its log line, llmgate-admin usage
#   (JSON, CSV, text) show cached and cache-write tokens apart;
# - a request whose whole prompt is written to the cache costs more than
#   the old bound (prompt x input) reserved: the reservation covers it, no
#   over_reservation flag;
# - the books balance.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=sk-mock-t0817 LLMGATE_MASTER_KEY=sk-master-t0817-key
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

[provider deepseek]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[provider gemini]
type = gemini
base_url = $MOCK_URL/v1beta
api_key = env:MOCK_API_KEY

; cache_write_price: the default, 1.25 x 3 = 3.75
[model claude-c]
provider = anthropic
upstream = claude-mock
input_price = 3
output_price = 15
cached_input_price = 0.30

; a price of its own (1-hour cache writes cost 2 x input)
[model claude-w]
provider = anthropic
upstream = claude-mock
input_price = 3
output_price = 15
cached_input_price = 0.30
cache_write_price = 6

[model gpt-c]
provider = openai
upstream = mock-gpt
input_price = 2.50
output_price = 10
cached_input_price = 1.25

[model ds-c]
provider = deepseek
upstream = mock-ds
input_price = 0.27
output_price = 1.10
cached_input_price = 0.07

[model gem-c]
provider = gemini
upstream = gemini-mock
input_price = 1.25
output_price = 10
cached_input_price = 0.3125
EOF

# cost IN CW CR OUT PIN PCW PCR POUT: micro-USD, prices in micro-USD per 1M
# tokens, the sum rounded up once (money_sum_total).
cost() {
	echo $(( ($1 * $5 + $2 * $6 + $3 * $7 + $4 * $8 + 999999) / 1000000 ))
}
last_row() { admin usage --rows --key "$1" | tail -n 1; }
last_upstream() { mock_log | jx "$1"; }
usage_line() {
	wait_until 15 grep -q "usage id=$1 " "$SERVER_LOG" 2>/dev/null
	grep -h "usage id=$1 " "$SERVER_LOG" 2>/dev/null | tail -n 1
}
row_tokens='[d["prompt_tokens"], d["cached_tokens"], d["cache_write_tokens"], d["completion_tokens"]]'

# An OpenAI request with a cache breakpoint everywhere one can be.
cached_request() {	# MODEL MOCK-DIRECTIVES [EXTRA-MEMBERS]
	printf '%s' '{"model":"'"$1"'",'"${3:+$3,}"'"messages":[
	  {"role":"system","content":"You are terse."},
	  {"role":"system","content":[{"type":"text","text":"A long manual.","cache_control":{"type":"ephemeral"}}]},
	  {"role":"user","content":[{"type":"text","text":"A long document.","cache_control":{"type":"ephemeral","ttl":"5m"}},
	    {"type":"text","text":"The question. MOCK{'"$2"'}"}]}],
	  "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}},"cache_control":{"type":"ephemeral"}}]}'
}

scenarios() {
	local k=$SERVER_KIND row rid want out body b

	create_key K --name "pc-$k"

	# --- Anthropic: cache_control arrives, writes and reads priced --------------
	mock_clear
	api "$K" POST /v1/chat/completions "$(cached_request claude-c 'input_tokens=7,cache_write=1500,cached=300,chunks=4')"
	is "$STATUS" 200 "$k: a request with cache_control is served"
	is "$(last_upstream 'd["log"][-1]["body"]["system"]')" \
	    '[{"type": "text", "text": "You are terse."}, {"type": "text", "text": "A long manual.", "cache_control": {"type": "ephemeral"}}]' \
	    "$k: the Anthropic upstream got the system as blocks, the breakpoint on its block"
	is "$(last_upstream 'd["log"][-1]["body"]["messages"][0]["content"][0]["cache_control"]')" \
	    '{"type": "ephemeral", "ttl": "5m"}' "$k: a user part's cache_control (with ttl) arrived"
	is "$(last_upstream '[b.get("cache_control") for b in d["log"][-1]["body"]["messages"][0]["content"]]')" \
	    '[{"type": "ephemeral", "ttl": "5m"}, null]' "$k: and only on that part"
	is "$(last_upstream 'd["log"][-1]["body"]["tools"][0]["cache_control"]')" '{"type": "ephemeral"}' \
	    "$k: a tool's cache_control arrived"
	is "$(jx '[d["usage"]["prompt_tokens"], d["usage"]["prompt_tokens_details"]]' <<<"$BODY")" \
	    '[1807, {"cached_tokens": 300, "cache_creation_tokens": 1500}]' \
	    "$k: the client's usage: every prompt token, cache reads and writes apart"
	row=$(last_row "pc-$k")
	is "$(jx "$row_tokens" <<<"$row")" '[1807, 300, 1500, 4]' "$k: the usage row keeps reads and writes apart"
	want=$(cost 7 1500 300 4 3000000 3750000 300000 15000000)
	is "$(jx 'd["cost_micro_usd"]' <<<"$row")" "$want" \
	    "$k: cost = 7 x \$3 + 1500 x \$3.75 + 300 x \$0.30 + 4 x \$15 per 1M = $want micro-USD"
	rid=$(jx 'd["request_id"]' <<<"$row")
	like "$(usage_line "$rid")" "prompt=1807 completion=4 cached=300 estimated=0 cost_micro_usd=$want .* cache_write=1500" \
	    "$k: the usage log line shows both"

	# The model's own cache_write_price; streamed.
	out=$(curl -sS -N -H "Authorization: Bearer $K" -H 'Content-Type: application/json' \
	    --data-binary "$(cached_request claude-w 'input_tokens=11,cache_write=2000,cached=0,chunks=3' \
	    '"stream":true,"stream_options":{"include_usage":true}')" "$GW_URL/v1/chat/completions")
	like "$out" '"prompt_tokens":2011,"completion_tokens":3,"total_tokens":2014,"prompt_tokens_details":\{"cached_tokens":0,"cache_creation_tokens":2000\}' \
	    "$k: streamed: the usage chunk says the cache writes"
	row=$(last_row "pc-$k")
	is "$(jx "$row_tokens + [d['stream']]" <<<"$row")" '[2011, 0, 2000, 3, true]' "$k: streamed row"
	want=$(cost 11 2000 0 3 3000000 6000000 300000 15000000)
	is "$(jx 'd["cost_micro_usd"]' <<<"$row")" "$want" \
	    "$k: cache writes at the model's own cache_write_price (\$6): $want micro-USD"

	# No breakpoint: the system stays one string, as it always went.
	mock_clear
	api "$K" POST /v1/chat/completions '{"model":"claude-c","messages":[{"role":"system","content":"a"},{"role":"system","content":"b"},{"role":"user","content":"hi"}]}'
	is "$STATUS $(last_upstream 'd["log"][-1]["body"]["system"]')" "200 a

b" "$k: without cache_control the system is one string"

	api "$K" GET /v1/models/claude-c
	is "$(jx '[float(d["llmgate"][f]) for f in ("input_price_usd", "cached_input_price_usd", "cache_write_price_usd")]' <<<"$BODY")" \
	    '[3.0, 0.3, 3.75]' "$k: /v1/models/{id} gives the cache prices"

	# --- OpenAI, DeepSeek, Gemini ------------------------------------------------
	chat_as "$K" gpt-c 'hello MOCK{prompt_tokens=1000,cached=600,completion_tokens=5}'
	row=$(last_row "pc-$k")
	is "$STATUS $(jx "$row_tokens" <<<"$row")" '200 [1000, 600, 0, 5]' "$k: OpenAI's cached_tokens in the row"
	want=$(cost 400 0 600 5 2500000 2500000 1250000 10000000)
	is "$(jx 'd["cost_micro_usd"]' <<<"$row")" "$want" "$k: OpenAI: 400 x \$2.50 + 600 x \$1.25 + 5 x \$10 = $want"

	chat_as "$K" ds-c 'hello MOCK{prompt_tokens=1000,cache_hit=640,completion_tokens=5}'
	row=$(last_row "pc-$k")
	is "$STATUS $(jx "$row_tokens" <<<"$row")" '200 [1000, 640, 0, 5]' \
	    "$k: DeepSeek's prompt_cache_hit_tokens are the cached tokens"
	want=$(cost 360 0 640 5 270000 270000 70000 1100000)
	is "$(jx 'd["cost_micro_usd"]' <<<"$row")" "$want" \
	    "$k: DeepSeek: 360 x \$0.27 + 640 x \$0.07 + 5 x \$1.10 = 147.5 -> $want"

	chat_as "$K" gem-c 'hello MOCK{prompt_tokens=1000,cached=400,chunks=3}'
	row=$(last_row "pc-$k")
	is "$STATUS $(jx "$row_tokens" <<<"$row")" '200 [1000, 400, 0, 3]' \
	    "$k: Gemini's cachedContentTokenCount in the row"
	want=$(cost 600 0 400 3 1250000 1250000 312500 10000000)
	is "$(jx 'd["cost_micro_usd"]' <<<"$row")" "$want" \
	    "$k: Gemini: 600 x \$1.25 + 400 x \$0.3125 + 3 x \$10 = $want"

	# cache_control elsewhere: passed on as sent to an OpenAI-protocol
	# upstream (OpenRouter hands it to Anthropic), left out for Gemini.
	mock_clear
	api "$K" POST /v1/chat/completions "$(cached_request gpt-c 'chunks=1')"
	is "$STATUS $(last_upstream 'd["log"][-1]["body"]["messages"][2]["content"][0]["cache_control"]')" \
	    '200 {"type": "ephemeral", "ttl": "5m"}' "$k: an OpenAI-protocol upstream gets cache_control as sent"
	api "$K" POST /v1/chat/completions "$(cached_request gem-c 'chunks=1')"
	is "$STATUS $(last_upstream '"cache_control" in json.dumps(d["log"][-1]["body"])')" \
	    '200 false' "$k: a Gemini upstream gets none (it would refuse the field)"

	# --- The reservation covers a prompt written whole to the cache -----------
	# The worst prompt is the body's bytes (B); the mock reports all of them
	# written to the cache and none plain, and one output token. The old
	# bound, B x \$3 + 1 x \$15, is below B x \$3.75 + \$15.
	body=$(python3 -c '
import json, sys
def req(n):
    return json.dumps({"model": "claude-c", "max_tokens": 1, "messages": [
        {"role": "user", "content": "x" * 2000 + " MOCK{input_tokens=0,chunks=1,cache_write=%08d}" % n}]},
        separators=(",", ":"))
b = len(req(0).encode())
print(req(b))')
	b=${#body}
	api "$K" POST /v1/chat/completions "$body"
	row=$(last_row "pc-$k")
	is "$STATUS $(jx "$row_tokens" <<<"$row")" "200 [$b, 0, $b, 1]" \
	    "$k: the whole prompt ($b tokens, the bound) written to the cache"
	want=$(cost 0 "$b" 0 1 3000000 3750000 300000 15000000)
	is "$(jx '[d["cost_micro_usd"], d["reserved_micro_usd"], d["over_reservation"]]' <<<"$row")" \
	    "[$want, $want, false]" \
	    "$k: it costs $want, more than the old bound $(cost "$b" 0 0 1 3000000 0 0 15000000): reserved exactly that, not over"

	# --- Reports: the columns apart ----------------------------------------------
	out=$(admin usage --json --group-by model --key "pc-$k")
	is "$(jx '{r["group"]: [r["cached_tokens"], r["cache_write_tokens"]] for r in d["data"]}' <<<"$out")" \
	    "{\"claude-c\": [300, $((1500 + b))], \"claude-w\": [0, 2000], \"ds-c\": [640, 0], \"gem-c\": [400, 0], \"gpt-c\": [600, 0]}" \
	    "$k: usage --json: cached and cache-write tokens per model"
	is "$(jx '[d["total"]["cached_tokens"], d["total"]["cache_write_tokens"]]' <<<"$out")" \
	    "[1940, $((3500 + b))]" "$k: and in total"
	out=$(admin usage --csv --group-by model --key "pc-$k")
	like "$(head -n 1 <<<"$out")" '^group,requests,errors,prompt_tokens,completion_tokens,cached_tokens,cache_write_tokens,cost_micro_usd,' \
	    "$k: usage --csv has both columns"
	like "$out" $'\n'"claude-w,1,0,2011,3,0,2000," "$k: usage --csv row of claude-w"
	out=$(admin usage --group-by model --key "pc-$k")
	like "$out" 'CACHED +CACHE_WRITE' "$k: usage (text) has both columns"
	like "$out" 'claude-w +1 +0 +2011 +3 +0 +2000 ' "$k: usage (text) row of claude-w"
}

for_each_server "$CONF" scenarios

is "$(admin check --json | jx 'd["problems"]')" '[]' "check: the books balance"

done_testing
