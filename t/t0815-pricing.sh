#!/bin/bash
# t0815-pricing.sh: every model that is served has a price, and the key's
# rules hold for every candidate of a plan. Under every front end:
# - a name nothing prices is refused to client keys (400 model_not_priced,
#   never forwarded); the master key is served, its row flagged unpriced;
# - a dated snapshot priced by a [model PATTERN] template with like = its
#   model costs what its model costs, passes its allow-list, is downgraded
#   like it (and shares its rpm: t0812-windows.sh); a template without
#   provider prices what the match patterns route; /v1/models/{id} names
#   the template;
# - a fallback, a task route or a tier downgrade never serves a model the
#   key may not use (the configurations that escaped before);
# - X-Llmgate-Downgraded-From comes from the candidate that served;
# - a provider-reported cost (OpenRouter's usage.cost) is the bill;
# - estimates count bytes of the whole request and of tool-call arguments
#   (a NUL cuts nothing); a NUL in the model name is refused.
# Then unpriced = free, and --check-config --model.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0815
export LLMGATE_MASTER_KEY=sk-master-t0815-key
CONF=$TMPDIR_T/llmgate.ini

# breaker = off: every front end sends the same failing mock-c-up
# (breakers are t0835's).
write_mock_gateway "$CONF" "default_tier = T1" "breaker = off"
cat >>"$CONF" <<EOF
[model mock-a]
provider = mock
upstream = mock-a-up
input_price = 1
output_price = 2

[model mock-a-20*]
like = mock-a


[model mock-t*]
input_price = 5
output_price = 6

[model mock-b]
provider = mock
upstream = mock-b-up
input_price = 3
output_price = 4

; Always fails (the mock reads the fault from the model string).
[model mock-c]
provider = mock
upstream = mock-c-up@status=503
input_price = 1
output_price = 1
fallback = mock-b

[model mock-d]
provider = mock
upstream = mock-d-up@status=503
input_price = 1
output_price = 1
fallback = mock-big

[model mock-e]
provider = mock
upstream = mock-e-up
input_price = 1
output_price = 1
fallback = mock-big

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

[tier T1]
rpm = 0

[tier T3]
downgrade = mock-big -> mock-small, mock-huge* -> mock-small

[task escape]
model = mock-c
fallback = mock-b
EOF
cost() { echo $(( ($1 * $3 + $2 * $4 + 999999) / 1000000 )); }	# P C IN OUT
last_row() { admin usage --rows --key "$1" | tail -n 1; }
upstreams() { mock_log | jx '[e["model"] for e in d["log"]]'; }

scenarios() {
	local k=$SERVER_KIND row p c

	create_key K --name "client-$k"
	create_key A --name "only-a-$k" --models mock-a
	create_key C --name "only-c-$k" --models mock-c
	create_key T3 --name "t3-$k" --tier T3 --models mock-big
	create_key T3ALL --name "t3all-$k" --tier T3

	# --- Unpriced names --------------------------------------------------------
	mock_clear
	chat_as "$K" mock-zzz hello
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "400 model_not_priced" \
	    "$k: a name only a match pattern serves -> 400 model_not_priced"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" "mock-zzz" "$k: the message names the model"
	is "$(upstreams)" '[]' "$k: the unpriced request never reached the upstream"
	chat_as "$LLMGATE_MASTER_KEY" mock-zzz hello
	is "$STATUS" 200 "$k: the master key is served an unpriced model"
	row=$(last_row 0)
	is "$(jx '[d["served"], d["cost_micro_usd"], d["unpriced"]]' <<<"$row")" '["mock-zzz", 0, true]' \
	    "$k: its row: cost 0, flagged unpriced"

	# --- Templates ---------------------------------------------------------------
	mock_clear
	chat_as "$A" mock-a-2025-01-01 hello
	is "$STATUS $(hdr X-Llmgate-Model)" "200 mock-a-2025-01-01" \
	    "$k: a key allowed mock-a may use its snapshot"
	is "$(upstreams)" '["mock-a-2025-01-01"]' "$k: the snapshot goes upstream as asked"
	read -r p c <<<"$(jx '"%d %d" % (d["usage"]["prompt_tokens"], d["usage"]["completion_tokens"])' <<<"$BODY")"
	row=$(last_row "only-a-$k")
	is "$(jx 'd["cost_micro_usd"]' <<<"$row")" "$(cost "$p" "$c" 1000000 2000000)" \
	    "$k: the snapshot costs what mock-a costs"
	chat_as "$A" mock-b hello
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "403 model_not_allowed" "$k: but not mock-b"
	chat_as "$K" mock-tx hello
	is "$STATUS" 200 "$k: a template without provider prices a pattern-routed name"
	read -r p c <<<"$(jx '"%d %d" % (d["usage"]["prompt_tokens"], d["usage"]["completion_tokens"])' <<<"$BODY")"
	is "$(jx 'd["cost_micro_usd"]' <<<"$(last_row "client-$k")")" "$(cost "$p" "$c" 5000000 6000000)" \
	    "$k: at the template's prices"
	api "$K" GET /v1/models/mock-a-2025-01-01
	is "$STATUS $(jx '[d["id"], d["llmgate"]["priced_by"], d["llmgate"]["identity"]]' <<<"$BODY")" \
	    '200 ["mock-a-2025-01-01", "mock-a-20*", "mock-a"]' "$k: /v1/models/{id} names the template"
	api "$K" GET /v1/models/mock-zzz
	is "$STATUS" 404 "$k: /v1/models/{id} of an unpriced name is 404 for a client key"
	api "$K" GET /v1/models
	is "$(jx '[m["id"] for m in d["data"] if "*" in m["id"]]' <<<"$BODY")" '[]' \
	    "$k: /v1/models lists no template as a model"

	# --- Every candidate obeys the key's model list ---------------------------
	mock_clear
	chat_as "$C" mock-c hello
	is "$(upstreams)" '["mock-c-up@status=503"]' \
	    "$k: mock-c fails; its fallback mock-b, not allowed to the key, is never tried"
	is "$STATUS" 503 "$k: the failure is answered"
	mock_clear
	curl -sS -o /dev/null -D "$TMPDIR_T/h" -H "Authorization: Bearer $C" -H 'X-Task: escape' \
	    -H 'Content-Type: application/json' --data-binary "$(chat_json mock-c hello)" \
	    "$GW_URL/v1/chat/completions"
	is "$(upstreams)" '["mock-c-up@status=503"]' \
	    "$k: a task's fallback the key may not use is never tried either"
	mock_clear
	chat_as "$T3" mock-big hello
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "403 model_not_allowed" \
	    "$k: a T3 key allowed only mock-big: its downgrade to mock-small is refused, not served"
	is "$(upstreams)" '[]' "$k: nothing was forwarded"
	chat_as "$T3ALL" mock-big-2025 hello
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "400 model_not_priced" \
	    "$k: mock-big-2025 has no price (no template): refused"
	chat_as "$T3ALL" mock-huge-1 hello
	is "$STATUS $(hdr X-Llmgate-Model)" "200 mock-small" \
	    "$k: an unpriced name the tier downgrades to a priced model is served as that model"

	# --- X-Llmgate-Downgraded-From: the candidate that served ----------------
	chat_as "$T3ALL" mock-e hello
	is "$(hdr X-Llmgate-Model)|$(hdr X-Llmgate-Downgraded-From)" "mock-e|" \
	    "$k: mock-e served: no downgrade header (only its fallback would be downgraded)"
	chat_as "$T3ALL" mock-d hello
	is "$(hdr X-Llmgate-Model)|$(hdr X-Llmgate-Downgraded-From)" "mock-small|mock-big" \
	    "$k: mock-d failed, its fallback mock-big was served as mock-small: the header says so"

	# --- The provider's own price ----------------------------------------------
	chat_as "$K" mock-b 'priced MOCK{cost=0.0123}'
	row=$(last_row "client-$k")
	is "$STATUS $(jx '[d["cost_micro_usd"], d["cost_reported"]]' <<<"$row")" '200 [12300, true]' \
	    "$k: OpenRouter's usage.cost is the bill, flagged cost_reported"
	curl -sS -N -o /dev/null -H "Authorization: Bearer $K" -H 'Content-Type: application/json' \
	    --data-binary '{"model":"mock-b","stream":true,"messages":[{"role":"user","content":"s MOCK{cost=0.000456}"}]}' \
	    "$GW_URL/v1/chat/completions"
	is "$(jx '[d["cost_micro_usd"], d["cost_reported"], d["stream"]]' <<<"$(last_row "client-$k")")" '[456, true, true]' \
	    "$k: streamed too"

	# --- Estimates an attacker cannot shrink ------------------------------------
	# 40000 characters after a NUL, no usage reported: strlen would count 1.
	python3 -c 'import json; print(json.dumps({"model":"mock-b","messages":[{"role":"user","content":"\u0000" + "x"*40000 + " MOCK{usage=0}"}]}))' >"$TMPDIR_T/nul.json"
	api "$K" POST /v1/chat/completions "$(cat "$TMPDIR_T/nul.json")"
	row=$(last_row "client-$k")
	is "$STATUS $(jx 'd["estimated"]' <<<"$row")" "200 true" "$k: no usage: estimated"
	ok "$k: the estimate counts every byte past the NUL ($(jx 'd["prompt_tokens"]' <<<"$row") >= 10000)" \
	    test "$(jx 'd["prompt_tokens"]' <<<"$row")" -ge 10000
	chat_as "$K" mock-b 'call MOCK{tool=1,usage=0}'
	ok "$k: tool-call arguments count as completion ($(jx 'd["completion_tokens"]' <<<"$(last_row "client-$k")") > 0)" \
	    test "$(jx 'd["completion_tokens"]' <<<"$(last_row "client-$k")")" -gt 0
	curl -sS -N -o /dev/null -H "Authorization: Bearer $K" -H 'Content-Type: application/json' \
	    --data-binary '{"model":"mock-b","stream":true,"messages":[{"role":"user","content":"call MOCK{tool=1,usage=0}"}]}' \
	    "$GW_URL/v1/chat/completions"
	row=$(last_row "client-$k")
	ok "$k: streamed tool-call arguments count too ($(jx 'd["completion_tokens"]' <<<"$row"))" \
	    test "$(jx 'd["completion_tokens"] > 0 and d["estimated"]' <<<"$row")" = true
	api "$K" POST /v1/chat/completions '{"model":"mock-a\u0000x","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS $(jx 'd["error"]["param"]' <<<"$BODY")" "400 model" "$k: a NUL in the model name -> 400"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" "NUL" "$k: the message says why"
}

for_each_server "$CONF" scenarios

# --- unpriced = free -----------------------------------------------------------
sed -i 's/^default_tier = T1$/default_tier = T1\nunpriced = free/' "$CONF"
start_lighttpd "$CONF"
create_key F --name free-client
chat_as "$F" mock-zzz hello
is "$STATUS" 200 "unpriced = free: a client key is served an unpriced name"
is "$(jx '[d["cost_micro_usd"], d["unpriced"]]' <<<"$(last_row free-client)")" '[0, true]' \
    "unpriced = free: at cost 0, flagged"
stop_server

# --- --check-config --model ------------------------------------------------------
out=$("$LLMGATE" --check-config --config "$CONF" --model mock-a-2025-01-01 --model mock-zzz 2>&1)
like "$out" 'models, 2 templates' "check-config counts the templates"
like "$out" 'model mock-a-2025-01-01: provider mock, upstream mock-a-2025-01-01, priced by \[model mock-a-20\*\] \(like mock-a\): input \$1\.0+, output \$2\.0+' \
    "check-config --model names the template and its prices"
like "$out" 'model mock-zzz: provider mock, upstream mock-zzz, no price: served free' \
    "check-config --model says a name is unpriced"
is "$(admin check --json | jx 'd["problems"]')" '[]' "check: the books balance"

done_testing
