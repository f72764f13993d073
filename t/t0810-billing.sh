#!/bin/bash
# t0810-billing.sh: money under every front end: a prepaid key with too
# little balance gets 402, a topup lets it through; every billed request has
# one ledger debit (linked to its request id) and one usage row whose cost is
# the upstream's reported tokens times the configured prices, rounded up to a
# micro-dollar; streams are billed with the upstream's final usage chunk, or
# estimated (and flagged) without one; a tier downgrade serves the cheaper
# model; an agent's and a key's daily budget warn, then block. At the end
# llmgate-admin check finds the books clean. The rate limits' minutes and
# the budgets' days are t0812-windows.sh's, on a clock it sets.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0810
export LLMGATE_MASTER_KEY=sk-master-t0810-key
CONF=$TMPDIR_T/llmgate.ini

# Prices in micro-USD per 1M tokens, as the config below gives them in USD.
A_IN=12345000 A_OUT=37500000		# mock-a, mock-est: 12.345 and 37.5
BIG_IN=100000000 BIG_OUT=300000000	# mock-big: 100 and 300
SMALL_IN=500000 SMALL_OUT=1250000	# mock-small: 0.5 and 1.25
B_IN=10000 B_OUT=37500000		# mock-b: 0.01 and 37.5
AGENT_BUDGET=10000			# tier TB: 0.01 USD per agent per day
KEY_BUDGET=2000				# --daily-budget 0.002

write_mock_gateway "$CONF" "default_tier = T1" "budget_warn_percent = 90"
cat >>"$CONF" <<EOF
[model mock-a]
provider = mock
upstream = mock-a-up
input_price = 12.345
output_price = 37.5

[model mock-est]
provider = mock
upstream = mock-est-up
input_price = 12.345
output_price = 37.5

[model mock-big]
provider = mock
upstream = mock-big-up
input_price = 100
output_price = 300

[model mock-small]
provider = mock
upstream = mock-small-up
input_price = 0.5
output_price = 1.25

[model mock-b]
provider = mock
upstream = mock-b-up
input_price = 0.01
output_price = 37.5
EOF
cat >>"$CONF" <<EOF

[tier T1]
rpm = 0

[tier T3]
downgrade = mock-big -> mock-small

[tier TB]
daily_budget = 0.01

[agent helper]
tier = T3
EOF

cost() {	# PROMPT COMPLETION IN OUT: micro-USD, rounded up once
	echo $(( ($1 * $3 + $2 * $4 + 999999) / 1000000 ))
}

# worst BODY MAX_TOKENS IN OUT: what the gateway reserves for a request: the
# prompt bounded by one token per byte of body (a token is at least a
# byte), max_tokens out.
worst() {
	cost "$(printf %s "$1" | wc -c)" "$2" "$3" "$4"
}

# settled KEY-NAME N: wait until N usage rows of that key are stored. The
# gateway answers first and settles after (a worker's other thread may
# admit the client's next request in between, seeing the first one's
# reservation still held): sequential budget checks wait for it.
rows_of_key() { admin usage --rows --key "$1" --from 2000-01-01 --to 2100-01-01 | wc -l; }
settled() {
	_settled() { [ "$(rows_of_key "$1")" -ge "$2" ]; }
	wait_until 20 _settled "$1" "$2" || diag "$1: $(rows_of_key "$1") rows settled, not $2"
}

upstream_usage() {	# "PROMPT COMPLETION" the mock reported last ("" if none)
	mock_log | jx '"%d %d" % (d["log"][-1]["usage"]["prompt_tokens"], d["log"][-1]["usage"]["completion_tokens"]) if d["log"][-1]["usage"] else ""'
}

usage_group() {	# KEY GROUP FIELD: a field of one row of `usage --json --group-by model --key KEY`
	admin usage --json --group-by model --key "$1" | jx "([r for r in d['data'] if r['group'] == '$2'] or [{}])[0].get('$3')"
}

scenarios() {
	local k=$SERVER_KIND pp t3 t1 bk kb nx i oks warned blocked w expect spent first small \
	    rid p c costs=() rids=() est_rid out total_cost

	# --- Prepaid: 402 with the balance in the message, then a topup -----------
	mock_clear
	create_key pp --name "pp-$k" --prepaid
	out=$(admin topup "pp-$k" 0.0001 --reason "first money" 2>&1)
	is "$?" 0 "$k: llmgate-admin topup exits 0"
	like "$out" 'balance 0\.0001([^0-9]|$)' "$k: topup prints the new balance"
	chat_as "$pp" mock-a hello '"max_tokens":5'
	is "$STATUS" 402 "$k: prepaid key with 100 micro-USD, worst case $(worst "$(chat_json mock-a hello '"max_tokens":5')" 5 $A_IN $A_OUT) -> 402"
	is "$(jx 'd["error"]["type"]' <<<"$BODY")" insufficient_quota "$k: 402 type insufficient_quota"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" insufficient_balance "$k: 402 code insufficient_balance"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" '0\.000100' "$k: the message gives the balance"
	is "$(mock_log | jx 'len([e for e in d["log"] if e["model"] == "mock-a-up"])')" 0 \
	    "$k: the refused request never reached the upstream"
	ok "$k: topup 0.01" admin topup "pp-$k" 0.01
	is "$(admin balance "pp-$k" --json | jx 'd["balance_micro_usd"]')" 10100 "$k: balance 10100 micro-USD"

	# --- Billed requests: a plain one, a stream with usage, one without ------
	mock_clear
	chat_as "$pp" mock-a hello '"max_tokens":5'
	is "$STATUS" 200 "$k: after the topup the request passes"
	rid=$(hdr X-Request-Id)
	like "$rid" '^[A-Za-z0-9_-]{8,}$' "$k: X-Request-Id present"
	read -r p c <<<"$(upstream_usage)"
	is "$p $c" "2 3" "$k: mock reported 2 prompt + 3 completion tokens"
	costs+=("$(cost "${p:-0}" "${c:-0}" $A_IN $A_OUT)")
	rids+=("$rid")
	is "${costs[0]}" 138 "$k: expected cost ceil(2*12.345 + 3*37.5) = 138"
	is "$(jx 'd["usage"]["prompt_tokens"]' <<<"$BODY")" 2 "$k: the client sees the upstream's usage"

	# Streamed, the client asks for usage; the upstream reports 7 completion
	# tokens for 3 pieces: the bill follows the report, not the pieces.
	out=$(curl -sS -N --max-time 30 -D "$TMPDIR_T/sh" -H "Authorization: Bearer $pp" \
	    -H 'Content-Type: application/json' --data-binary \
	    '{"model":"mock-a","stream":true,"stream_options":{"include_usage":true},"max_tokens":20,"messages":[{"role":"user","content":"stream MOCK{completion_tokens=7}"}]}' \
	    "$GW_URL/v1/chat/completions")
	like "$out" 'data: \[DONE\]' "$k: stream completes"
	like "$out" '"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":7' "$k: the usage chunk reaches the client"
	rid=$(tr -d '\r' <"$TMPDIR_T/sh" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p')
	read -r p c <<<"$(upstream_usage)"
	is "$c" 7 "$k: mock reported 7 completion tokens"
	costs+=("$(cost "${p:-0}" "${c:-0}" $A_IN $A_OUT)")
	rids+=("$rid")

	# Streamed with no usage from the upstream: the gateway estimates.
	mock_clear
	out=$(curl -sS -N --max-time 30 -D "$TMPDIR_T/sh" -H "Authorization: Bearer $pp" \
	    -H 'Content-Type: application/json' --data-binary \
	    '{"model":"mock-est","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"estimate this please MOCK{usage=0,chunks=4}"}]}' \
	    "$GW_URL/v1/chat/completions")
	like "$out" 'data: \[DONE\]' "$k: stream without upstream usage completes"
	is "$(upstream_usage)" "" "$k: the mock reported no usage"
	is "$(mock_log | jx 'd["log"][-1]["body"]["stream_options"]["include_usage"]')" true \
	    "$k: the gateway asked the upstream for usage anyway"
	est_rid=$(tr -d '\r' <"$TMPDIR_T/sh" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p')
	p=$(usage_group "pp-$k" mock-est prompt_tokens)
	c=$(usage_group "pp-$k" mock-est completion_tokens)
	is "$(usage_group "pp-$k" mock-est requests)" 1 "$k: one usage row for the estimated stream"
	ok "$k: estimated prompt tokens > 0 (got $p)" test "${p:-0}" -gt 0 2>/dev/null
	ok "$k: estimated completion tokens > 0 (got $c)" test "${c:-0}" -gt 0 2>/dev/null
	costs+=("$(cost "${p:-0}" "${c:-0}" $A_IN $A_OUT)")
	rids+=("$est_rid")
	is "$(usage_group "pp-$k" mock-est cost_micro_usd)" "${costs[2]}" \
	    "$k: the estimated row is priced at the model's prices"
	like "$(grep -h "usage id=$est_rid " "$SERVER_LOG" "$SERVER_DIR"/log/*.log 2>/dev/null)" 'estimated=1' \
	    "$k: the usage record of the stream is flagged estimated"
	unlike "$(grep -h "usage id=${rids[1]} " "$SERVER_LOG" "$SERVER_DIR"/log/*.log 2>/dev/null)" 'estimated=1' \
	    "$k: the stream with usage is not flagged estimated"

	# --- The ledger: topups and one debit per request, newest first -----------
	total_cost=$(( costs[0] + costs[1] + costs[2] ))
	out=$(admin ledger "pp-$k" --json)
	is "$(jx '[e["type"] for e in d["data"]]' <<<"$out")" \
	    '["debit", "debit", "debit", "topup", "topup"]' "$k: ledger: 3 debits after 2 topups"
	is "$(jx '[e["amount_micro_usd"] for e in d["data"]]' <<<"$out")" \
	    "[-${costs[2]}, -${costs[1]}, -${costs[0]}, 10000, 100]" "$k: ledger amounts are the costs"
	is "$(jx '[e["request_id"] for e in d["data"][:3]]' <<<"$out")" \
	    "[\"${rids[2]}\", \"${rids[1]}\", \"${rids[0]}\"]" "$k: each debit names its request id"
	is "$(jx '[e["balance_after_micro_usd"] for e in d["data"]]' <<<"$out")" \
	    "[$((10100 - total_cost)), $((10100 - costs[0] - costs[1])), $((10100 - costs[0])), 10100, 100]" \
	    "$k: balance_after runs down by each debit"
	is "$(jx 'd["data"][4]["reason"]' <<<"$out")" "first money" "$k: the topup keeps its reason"
	is "$(jx 'all(e["usage_id"] for e in d["data"][:3])' <<<"$out")" true "$k: each debit links its usage row"
	api "$pp" GET /billing/transactions
	is "$STATUS" 200 "$k: GET /billing/transactions"
	is "$(jx '[(e["type"], e["amount_micro_usd"], e["request_id"]) for e in d["data"]][:3]' <<<"$BODY")" \
	    "[[\"debit\", -${costs[2]}, \"${rids[2]}\"], [\"debit\", -${costs[1]}, \"${rids[1]}\"], [\"debit\", -${costs[0]}, \"${rids[0]}\"]]" \
	    "$k: /billing/transactions shows the same debits"
	is "$(jx '[d["object"], len(d["data"]), d["has_more"]]' <<<"$BODY")" '["list", 5, false]' \
	    "$k: 5 transactions, no more"
	api "$pp" GET '/billing/transactions?limit=2&offset=1'
	is "$(jx '[[e["request_id"] for e in d["data"]], d["has_more"]]' <<<"$BODY")" \
	    "[[\"${rids[1]}\", \"${rids[0]}\"], true]" "$k: limit and offset page the list"
	is "$(jx 'd["data"][0]["amount_usd"]' <<<"$BODY")" "$(printf -- '-0.%06d' "${costs[1]}")" \
	    "$k: amount_usd is the decimal string"

	# --- Usage rows: the mock's tokens times the prices, exactly ---------------
	out=$(admin usage --json --group-by model --key "pp-$k")
	is "$(jx '[r["group"] for r in d["data"]]' <<<"$out")" '["mock-a", "mock-est"]' \
	    "$k: usage by model: mock-a and mock-est"
	is "$(usage_group "pp-$k" mock-a requests) $(usage_group "pp-$k" mock-a errors)" "3 1" \
	    "$k: three requests on mock-a, the 402 among them as an error"
	is "$(usage_group "pp-$k" mock-a cost_micro_usd)" $(( costs[0] + costs[1] )) \
	    "$k: mock-a cost = sum of the computed costs"
	is "$(jx 'd["total"]["cost_micro_usd"]' <<<"$out")" "$total_cost" "$k: total cost = the ledger's debits"
	is "$(jx '[d["total"]["requests"], d["total"]["errors"]]' <<<"$out")" '[4, 1]' \
	    "$k: total 4 requests, 1 error (the 402, billed nothing)"
	api "$pp" GET '/billing/usage?group_by=model'
	is "$STATUS" 200 "$k: GET /billing/usage"
	is "$(jx '[(r["group"], r["requests"], r["prompt_tokens"], r["completion_tokens"], r["cost_micro_usd"]) for r in d["data"]]' <<<"$BODY")" \
	    "$(jx '[(r["group"], r["requests"], r["prompt_tokens"], r["completion_tokens"], r["cost_micro_usd"]) for r in d["data"]]' <<<"$out")" \
	    "$k: /billing/usage agrees with llmgate-admin usage"
	is "$(jx 'd["object"]' <<<"$BODY")" usage "$k: object usage"
	out=$(admin usage --csv --group-by model --key "pp-$k")
	like "$(head -n 1 <<<"$out")" 'group.*requests.*cost' "$k: usage --csv has a header line"
	like "$out" $'\n'"mock-a,3,1,[0-9]+,[0-9]+,0,0,$(( costs[0] + costs[1] )),0\\.000" "$k: usage --csv row for mock-a"
	out=$(admin balance "pp-$k" --json)
	is "$(jx '[d["balance_micro_usd"], d["credited_micro_usd"], d["debited_micro_usd"], d["reserved_micro_usd"]]' <<<"$out")" \
	    "[$((10100 - total_cost)), 10100, $total_cost, 0]" "$k: balance = credited - debited, nothing reserved"
	api "$pp" GET /billing/balance
	is "$(jx '[d["object"], d["balance_micro_usd"], d["prepaid"]]' <<<"$BODY")" "[\"balance\", $((10100 - total_cost)), true]" \
	    "$k: /billing/balance agrees"

	# --- Tier downgrade ------------------------------------------------------
	create_key t3 --name "t3-$k" --tier T3
	mock_clear
	chat_as "$t3" mock-big hello '"max_tokens":5'
	is "$STATUS" 200 "$k: T3 asks for mock-big -> 200"
	is "$(hdr X-Llmgate-Model)" mock-small "$k: served by mock-small"
	is "$(hdr X-Llmgate-Downgraded-From)" mock-big "$k: X-Llmgate-Downgraded-From: mock-big"
	is "$(mock_log | jx '[e["model"] for e in d["log"]]')" '["mock-small-up"]' "$k: the upstream got mock-small's id"
	read -r p c <<<"$(upstream_usage)"
	is "$(usage_group "t3-$k" mock-small cost_micro_usd)" "$(cost "${p:-0}" "${c:-0}" $SMALL_IN $SMALL_OUT)" \
	    "$k: billed at mock-small's prices"
	is "$(usage_group "t3-$k" mock-big requests)" null "$k: nothing billed as mock-big"
	create_key t1 --name "t1-$k" --tier T1
	mock_clear
	chat_as "$t1" mock-big hello '"max_tokens":5'
	is "$(hdr X-Llmgate-Model)" mock-big "$k: T1 is served mock-big"
	is "$(hdr X-Llmgate-Downgraded-From)" "" "$k: no downgrade header for T1"
	is "$(mock_log | jx '[e["model"] for e in d["log"]]')" '["mock-big-up"]' "$k: the upstream got mock-big's id"
	read -r p c <<<"$(upstream_usage)"
	is "$(usage_group "t1-$k" mock-big cost_micro_usd)" "$(cost "${p:-0}" "${c:-0}" $BIG_IN $BIG_OUT)" \
	    "$k: billed at mock-big's prices"

	# --- Agent daily budget (tier TB, 0.01 USD): warn past 90 %, then 429 ------
	# On mock-b (prompts nearly free: the reservation's bound on the
	# prompt costs nothing), a first request reports 240 completion tokens
	# (9000 micro-USD and a little): the agent is past 90 %. Small ones then
	# carry the warning until the worst case of the next one no longer
	# fits the budget.
	create_key bk --name "bk-$k" --tier TB --agent "agent-$k"
	chat_as "$bk" mock-b 'big MOCK{completion_tokens=240}' '"max_tokens":240'
	settled "bk-$k" 1
	read -r p c <<<"$(upstream_usage)"
	first=$(cost "${p:-0}" "${c:-0}" $B_IN $B_OUT)
	is "$STATUS $c" "200 240" "$k: budget: first request ($first micro-USD) passes"
	is "$(hdr X-Llmgate-Budget-Warning)" "" "$k: budget: no warning below 90 %"
	api "$bk" GET /usage
	is "$(jx '[d["object"], d["agent"], d["tier"]]' <<<"$BODY")" "[\"usage_summary\", \"agent-$k\", \"TB\"]" \
	    "$k: /usage names the key's agent and tier"
	is "$(jx 'd["budgets"]["agent_daily_micro_usd"]' <<<"$BODY")" $AGENT_BUDGET "$k: /usage: agent budget 10000"
	is "$(jx 'd["budgets"]["agent_spent_today_micro_usd"]' <<<"$BODY")" "$first" "$k: /usage: agent spent $first"
	is "$(jx 'd["today"]["cost_micro_usd"]' <<<"$BODY")" "$first" "$k: /usage: today's cost $first"
	ok "$k: budget: $first is past 90 % of $AGENT_BUDGET" test "$first" -ge $((AGENT_BUDGET * 9 / 10))
	small=$(cost 2 3 $B_IN $B_OUT)
	w=$(worst "$(chat_json mock-b hello '"max_tokens":5')" 5 $B_IN $B_OUT)
	expect=0
	for ((spent = first; spent + w <= AGENT_BUDGET; spent += small)); do expect=$((expect + 1)); done
	oks=0 warned=0 blocked=0
	for ((i = 1; i <= 12; i++)); do
		chat_as "$bk" mock-b hello '"max_tokens":5'
		if [ "$STATUS" = 200 ]; then
			oks=$((oks + 1))
			settled "bk-$k" $((oks + 1))
			[ -z "$(hdr X-Llmgate-Budget-Warning)" ] || warned=$((warned + 1))
			continue
		fi
		blocked=1
		break
	done
	is "$oks" "$expect" "$k: budget: $expect small requests of $small (worst case $w) fit"
	is "$warned" "$oks" "$k: budget: every one of them carried X-Llmgate-Budget-Warning"
	is "$blocked $STATUS" "1 429" "$k: budget: then 429"
	is "$(jx 'd["error"]["type"]' <<<"$BODY")" insufficient_quota "$k: budget 429 type insufficient_quota"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" budget_exceeded "$k: budget 429 code budget_exceeded"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" "agent-$k" "$k: the message names the agent"
	chat_as "$bk" mock-b hello '"max_tokens":5'
	is "$STATUS" 429 "$k: budget: the next request is refused too"
	api "$bk" GET /usage
	spent=$(jx 'd["budgets"]["agent_spent_today_micro_usd"]' <<<"$BODY")
	is "$spent" $((first + small * oks)) "$k: budget: spent = the billed requests"
	ok "$k: budget: spent $spent <= budget $AGENT_BUDGET" test "$spent" -le $AGENT_BUDGET
	ok "$k: the budget warning or refusal is logged with the agent" \
	    grep -sqiE "budget.*agent-$k|agent-$k.*budget" "$SERVER_LOG" "$SERVER_DIR"/log/error.log

	# --- Key daily budget (0.002 USD) ------------------------------------------
	create_key kb --name "kb-$k" --daily-budget 0.002
	w=$(worst "$(chat_json mock-a hello '"max_tokens":5')" 5 $A_IN $A_OUT)
	expect=0
	for ((spent = 0; spent + w <= KEY_BUDGET; spent += 138)); do expect=$((expect + 1)); done
	oks=0
	for ((i = 1; i <= 20; i++)); do
		chat_as "$kb" mock-a hello '"max_tokens":5'
		[ "$STATUS" = 200 ] || break
		oks=$((oks + 1))
		settled "kb-$k" "$oks"
	done
	is "$oks" "$expect" "$k: key budget: $expect requests of 138 (worst case $w) fit 2000"
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "429 budget_exceeded" "$k: key budget: then 429 budget_exceeded"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" 'Daily budget of this key' "$k: key budget: the message says whose"
	api "$kb" GET /usage
	is "$(jx '[d["budgets"]["key_daily_micro_usd"], d["budgets"]["key_spent_today_micro_usd"]]' <<<"$BODY")" \
	    "[$KEY_BUDGET, $((138 * oks))]" "$k: key budget: /usage shows budget and spend"

	# n choices may each produce max_tokens: the reservation counts them all.
	chat_as "$pp" mock-a hello '"max_tokens":5,"n":128'
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "402 insufficient_balance" \
	    "$k: n=128 choices of 5 tokens are reserved as 640 -> 402"

	# X-Agent: a key allowed to name its agent names a configured one.
	create_key xa --name "xa-$k" --allow-agent-header
	api "$xa" POST /v1/chat/completions "$(chat_json mock-big hello '"max_tokens":5')"
	is "$STATUS $(hdr X-Llmgate-Model)" "200 mock-big" "$k: x-agent: own agent, tier T1: mock-big"
	curl -sS -o "$TMPDIR_T/xa" -D "$HDRS" -H "Authorization: Bearer $xa" -H 'X-Agent: helper' \
	    -H 'Content-Type: application/json' --data-binary "$(chat_json mock-big hello '"max_tokens":5')" \
	    "$GW_URL/v1/chat/completions"
	is "$(hdr X-Llmgate-Model)" mock-small "$k: x-agent: helper (tier T3) is downgraded to mock-small"
	curl -sS -o "$TMPDIR_T/xa" -D "$HDRS" -H "Authorization: Bearer $xa" -H 'X-Agent: made-up' \
	    -H 'Content-Type: application/json' --data-binary "$(chat_json mock-big hello)" \
	    "$GW_URL/v1/chat/completions"
	is "$(jx 'd["error"]["code"]' <"$TMPDIR_T/xa")" unknown_agent "$k: x-agent: an unconfigured agent -> 400 unknown_agent"
	# nx has no tier of its own: its agent's (T1) would follow X-Agent.
	create_key nx --name "nx-$k"
	curl -sS -o "$TMPDIR_T/xa" -D "$HDRS" -H "Authorization: Bearer $nx" -H 'X-Agent: helper' \
	    -H 'Content-Type: application/json' --data-binary "$(chat_json mock-big hello '"max_tokens":5')" \
	    "$GW_URL/v1/chat/completions"
	is "$(hdr X-Llmgate-Model)" mock-big "$k: x-agent: ignored for a key not allowed to set it"
}

for_each_server "$CONF" scenarios

out=$(admin check --json)
is "$?" 0 "llmgate-admin check exits 0"
is "$(jx 'd["problems"]' <<<"$out")" '[]' "check: no problems"
is "$(jx 'd["usage_cost_micro_usd"] >= d["ledger_debits_micro_usd"] > 0' <<<"$out")" true \
    "check: usage cost covers the ledger debits (master key rows are not debited)"

done_testing
