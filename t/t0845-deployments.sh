#!/bin/bash
# t0845-deployments.sh: several keys per provider, context_fallback, and
# several deployments per model, under lighttpd and Apache mod_fcgid.
#
# context_fallback: an upstream 400 context_length_exceeded (OpenAI) or
# "prompt is too long" (Anthropic's words) moves the request to the model's
# context_fallback, skipping its ordinary fallbacks; a model without one
# answers the 400 as it came. The context_fallback is in the plan from the
# start: a prepaid key whose balance pays the model but not its
# context_fallback gets 402 (the reservation covers both), and a key whose
# model list leaves the context_fallback out gets the 400.
#
# Key pools: a provider with two keys, one revoked (the mock answers 401 to
# it, quoting it): every request is served with the other key, the revoked
# key is sent once in all (the mock's own log, by fingerprint) however many
# processes serve, its text reaches neither the client nor the log, and
# GET /health/detailed shows it set aside (by index and fingerprint, never
# the key). With a short key_cooldown_s it is probed again after it. A key
# whose quota is gone (429 insufficient_quota) is set aside the same way.
#
# Deployments: a model on two providers at weights 3:1 gets exactly 30 and
# 10 of 40 sequential requests (a smooth weighted round robin whose turns
# every process shares, so the counts are exact under mod_fcgid too; the
# mock's log); the dearer deployment's price is reserved for (402 for a
# balance that pays only the cheaper one); a deployment whose breaker
# opens gets nothing more and its turns are served by the other.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0845
export LLMGATE_MASTER_KEY=sk-master-t0845-key
export POOL_KEY_A=sk-pool-a-revoked-0123456789abcdef
export POOL_KEY_B=sk-pool-b-good-0123456789abcdef
export POOL_KEY_C=sk-pool-c-quota-0123456789abcdef
export POOL_KEY_D=sk-pool-d-good-0123456789abcdef
GW_PASSENV="POOL_KEY_A POOL_KEY_B POOL_KEY_C POOL_KEY_D"
CONF=$TMPDIR_T/llmgate.ini
N=20		# requests through a pool
SHORT=3		# key_cooldown_s of the quick pool

write_mock_gateway "$CONF" "default_max_tokens = 1000"
cat >>"$CONF" <<EOF
[provider anth]
type = anthropic
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[provider pool]
type = openai
base_url = $MOCK_URL/v1
api_key = env:POOL_KEY_A, env:POOL_KEY_B
key_cooldown_s = 300

[provider quick]
type = openai
base_url = $MOCK_URL/v1
api_key = env:POOL_KEY_A,
    env:POOL_KEY_D
key_cooldown_s = $SHORT

[provider pair]
type = openai
base_url = $MOCK_URL/v1
api_key = env:POOL_KEY_B, env:POOL_KEY_D

[model paired]
provider = pair
upstream = paired-up
input_price = 1
output_price = 1

[provider quota]
type = anthropic
base_url = $MOCK_URL/v1
api_key = env:POOL_KEY_C, env:POOL_KEY_D
key_cooldown_s = 300

[provider mock2]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
breaker_failures = 2
breaker_failure_rate = 0
breaker_open_s = 300

[model spread]
input_price = 1
output_price = 1
deployment = mock dep-a weight=3
deployment = mock2 dep-b weight=1 input_price=50 output_price=50

[model small]
provider = mock
upstream = small-up
fallback = other
context_fallback = big
input_price = 1
output_price = 1

[model big]
provider = mock
upstream = big-up
input_price = 100
output_price = 100

[model other]
provider = mock
upstream = other-up
input_price = 1
output_price = 1

[model plain]
provider = mock
upstream = plain-up
fallback = other
input_price = 1
output_price = 1

[model claude-small]
provider = anth
upstream = claude-small-up
context_fallback = big
input_price = 1
output_price = 1

[model pooled]
provider = pool
upstream = pooled-up
input_price = 1
output_price = 1

[model quickly]
provider = quick
upstream = quick-up
input_price = 1
output_price = 1

[model quota]
provider = quota
upstream = quota-up
input_price = 1
output_price = 1
EOF

CTX='status=400,error_code=context_length_exceeded,error_message=This model maximum context length is 16 tokens'
faults() { curl -sS -X POST --data-binary "$1" "$MOCK_URL/_mock/faults" >/dev/null; }
mock_keys() { curl -sS -X POST --data-binary "$1" "$MOCK_URL/_mock/keys" >/dev/null; }
fp() { printf 'sha256:%s' "$(printf '%s' "$1" | sha256sum | cut -c1-8)"; }
# Requests for upstream model M the mock saw with credential KEY (or any: "").
sent() {	# M [KEY]
	mock_log | jx "len([e for e in d['log'] if e['model'] == '$1' and ('${2:-}' == '' or
	    e['headers'].get('authorization', '') == 'Bearer ${2:-}' or e['headers'].get('x-api-key', '') == '${2:-}')])"
}
# The key entry INDEX of provider P in /health/detailed: a Python expression over it (k).
key_health() {	# P INDEX EXPR
	gw_curl "$GW_URL/health/detailed" |
	    jx "next(($3 for p in d['providers'] if p['name'] == '$1' for k in p['keys'] if k['index'] == $2), 'none')"
}

# What serves a name, for the operator: every deployment and the context fallback.
out=$("$LLMGATE" --config "$CONF" --check-config --model spread --model small 2>&1)
like "$out" 'deployment mock, upstream dep-a, weight 3: input \$[0-9.]+' \
    "--check-config --model: the first deployment, its weight and price"
like "$out" 'deployment mock2, upstream dep-b, weight 1: input \$50\.0+, output \$50\.0+' \
    "--check-config --model: the second deployment at its own price"
like "$out" 'context_fallback big' "--check-config --model: the context fallback"

create_key poor --name poor --prepaid
ok "topup poor 0.01" admin topup poor 0.01
create_key narrow --name narrow --models "small other"

scenario() {
	local k=$SERVER_KIND i out log codes bodies pids r0

	mock_clear
	mock_keys '{}'
	faults "{\"small-up\": \"$CTX\", \"plain-up\": \"$CTX\", \"claude-small-up\": \"status=400,error_message=prompt is too long: 210000 tokens > 200000 maximum\"}"

	# --- what a client sees of a model with deployments -----------------------
	api "$LLMGATE_MASTER_KEY" GET /v1/models/spread
	is "$STATUS $(jx '[[d["provider"], d["upstream"], d["weight"], d["available"], d["input_price_usd"]] for d in d["llmgate"]["deployments"]]' <<<"$BODY")" \
	    '200 [["mock", "dep-a", 3, true, "1.000000"], ["mock2", "dep-b", 1, true, "50.000000"]]' \
	    "$k: /v1/models/spread lists both deployments: weights, prices"
	api "$LLMGATE_MASTER_KEY" GET /v1/models
	is "$(jx '[len(m["llmgate"].get("deployments", [])) for m in d["data"] if m["id"] in ("spread", "small")]' <<<"$BODY")" \
	    '[2, 0]' "$k: /v1/models: deployments on the model that has them only"

	# --- context_fallback ---------------------------------------------------
	chat_as "$LLMGATE_MASTER_KEY" small "a long prompt"
	is "$STATUS $(hdr X-Llmgate-Model) $(hdr X-Llmgate-Attempts)" "200 big 2" \
	    "$k: context_length_exceeded from small: served by its context_fallback big"
	is "$(sent small-up) $(sent other-up) $(sent big-up)" "1 0 1" \
	    "$k: small once, its ordinary fallback other skipped, big once"
	out=$(gw_curl -N -D "$TMPDIR_T/ctx-stream.h" -H 'Content-Type: application/json' --data-binary \
	    '{"model":"small","stream":true,"messages":[{"role":"user","content":"a long stream"}]}' \
	    "$GW_URL/v1/chat/completions")
	HDRS=$TMPDIR_T/ctx-stream.h
	like "$(hdr X-Llmgate-Model) $out" '^big .*data: .*\[DONE\]' \
	    "$k: a stream too long for small: streamed by big"
	chat_as "$LLMGATE_MASTER_KEY" claude-small "a long prompt"
	is "$STATUS $(hdr X-Llmgate-Model)" "200 big" \
	    "$k: Anthropic's 'prompt is too long': to the context_fallback too"
	chat_as "$LLMGATE_MASTER_KEY" plain "a long prompt"
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "400 context_length_exceeded" \
	    "$k: a model without context_fallback answers the 400 as it came"
	is "$(sent other-up)" 0 "$k: and its ordinary fallback is not tried for it"
	chat_as "$LLMGATE_MASTER_KEY" small "MOCK{status=503}"
	is "$STATUS" 503 "$k: a 503 is no context error: never the context_fallback"
	is "$(sent big-up)" 3 "$k: big was not asked for it"
	chat_as "$poor" small "a long prompt"
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "402 insufficient_balance" \
	    "$k: the reservation covers the context_fallback: a balance that pays small but not big gets 402"
	chat_as "$narrow" small "a long prompt"
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "400 context_length_exceeded" \
	    "$k: a key that may not use big: its context error, not big"
	is "$(sent big-up)" 3 "$k: big not asked for the key that may not use it"
	faults '{}'

	# --- deployments --------------------------------------------------------
	mock_clear
	codes=""
	for ((i = 0; i < 40; i++)); do
		chat_as "$LLMGATE_MASTER_KEY" spread "spread $i"
		codes+="$STATUS:$(hdr X-Llmgate-Provider) "
	done
	is "$(tr ' ' '\n' <<<"$codes" | grep . | sort | uniq -c | awk 'NF { printf "%s%s*%s", s, $1, $2; s = " " }')" \
	    "30*200:mock 10*200:mock2" "$k: 40 requests at 3:1: 30 by mock, 10 by mock2 (headers)"
	is "$(sent dep-a) $(sent dep-b)" "30 10" "$k: the mock saw exactly 30 dep-a and 10 dep-b"
	# 24 at once (several mod_fcgid processes): still exactly 3:1.
	mock_clear
	pids=()
	for ((i = 0; i < 24; i++)); do
		gw_curl -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
		    --data-binary "$(chat_json spread "MOCK{first_byte_delay=1} at once $i")" \
		    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/spread.$i.code" &
		pids+=($!)
	done
	wait "${pids[@]}"
	is "$(cat "$TMPDIR_T"/spread.*.code | sort | uniq -c | awk '{print $1 "*" $2}')" "24*200" \
	    "$k: 24 concurrent requests: all 200"
	is "$(sent dep-a) $(sent dep-b)" "18 6" \
	    "$k: exactly 18 and 6: the turns are shared by every process"
	[ "$k" != apache ] || diag "$k: $(gw_worker_pids | wc -l) mod_fcgid processes"
	chat_as "$poor" spread "too dear"
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "402 insufficient_balance" \
	    "$k: the reservation is for the dearer deployment: 402"
	faults '{"dep-b": "status=503"}'
	mock_clear
	codes=""
	for ((i = 0; i < 20; i++)); do
		chat_as "$LLMGATE_MASTER_KEY" spread "b down $i"
		codes+="$STATUS:$(hdr X-Llmgate-Provider) "
	done
	is "$(tr ' ' '\n' <<<"$codes" | grep . | sort | uniq -c | awk 'NF { printf "%s%s*%s", s, $1, $2; s = " " }')" \
	    "20*200:mock" "$k: dep-b failing: all 20 served by dep-a"
	is "$(sent dep-b)" 2 "$k: dep-b tried twice (breaker_failures), then its breaker is open"
	is "$(gw_curl "$GW_URL/health/circuit-breakers" |
	    jx 'next((b["state"] for b in d["data"] if b["deployment"] == "mock2/dep-b"), "none")')" \
	    open "$k: /health/circuit-breakers: mock2/dep-b open"
	faults '{}'
	admin breaker reset >/dev/null

	# --- key pools ----------------------------------------------------------
	admin breaker reset >/dev/null
	mock_clear
	mock_keys "{\"revoked\": [\"$POOL_KEY_A\"], \"quota\": [\"$POOL_KEY_C\"]}"
	codes="" bodies=""
	for ((i = 0; i < N; i++)); do
		chat_as "$LLMGATE_MASTER_KEY" pooled "pool $i"
		codes+="$STATUS "
		bodies+="$BODY"
	done
	is "$codes" "$(printf '200 %.0s' $(seq $N))" "$k: all $N requests through the pool answered 200"
	unlike "$bodies" "$POOL_KEY_A|$POOL_KEY_B" "$k: no key in any answer"
	is "$(sent pooled-up "$POOL_KEY_A") $(sent pooled-up "$POOL_KEY_B")" "1 $N" \
	    "$k: the revoked key was sent once in all, the good one $N times"
	# At once, from as many processes as the server runs: still never key 1.
	pids=()
	for ((i = 0; i < 12; i++)); do
		gw_curl -o "$TMPDIR_T/burst.$i" -w '%{http_code}\n' -H 'Content-Type: application/json' \
		    --data-binary "$(chat_json pooled "MOCK{first_byte_delay=1} burst $i")" \
		    "$GW_URL/v1/chat/completions" \
		    >"$TMPDIR_T/burst.$i.code" &
		pids+=($!)
	done
	wait "${pids[@]}"
	is "$(cat "$TMPDIR_T"/burst.*.code | sort | uniq -c | awk '{print $1 "*" $2}')" "12*200" \
	    "$k: 12 concurrent requests through the pool: all 200"
	is "$(sent pooled-up "$POOL_KEY_A") $(sent pooled-up "$POOL_KEY_B")" "1 $((N + 12))" \
	    "$k: the revoked key still sent once in all (the set-aside is shared by every process)"
	[ "$k" != apache ] || diag "$k: $(gw_worker_pids | wc -l) mod_fcgid processes"
	is "$(key_health pool 1 'k["state"]')" set_aside "$k: /health/detailed: key 1 set aside"
	is "$(key_health pool 1 'k["fingerprint"]')" "$(fp "$POOL_KEY_A")" "$k: named by its fingerprint"
	is "$(key_health pool 2 'k["state"]')" ok "$k: key 2 ok"
	out=$(gw_curl "$GW_URL/health/detailed")
	unlike "$out" "$POOL_KEY_A|$POOL_KEY_B|${POOL_KEY_A:0:12}" "$k: no key (nor its prefix) in /health/detailed"
	is "$(jx 'd["status"]' <<<"$out")" degraded "$k: a key set aside: status degraded"
	unlike "$(gw_curl "$GW_URL/health/circuit-breakers")" '#key' \
	    "$k: keys are not listed as deployments"

	# Two good keys: exactly in turn, sequential or at once.
	for ((i = 0; i < 10; i++)); do chat_as "$LLMGATE_MASTER_KEY" paired "pair $i"; done
	is "$(sent paired-up "$POOL_KEY_B") $(sent paired-up "$POOL_KEY_D")" "5 5" \
	    "$k: two good keys, 10 requests: 5 each"
	pids=()
	for ((i = 0; i < 12; i++)); do
		gw_curl -o /dev/null -H 'Content-Type: application/json' \
		    --data-binary "$(chat_json paired "MOCK{first_byte_delay=1} pair at once $i")" \
		    "$GW_URL/v1/chat/completions" &
		pids+=($!)
	done
	wait "${pids[@]}"
	is "$(sent paired-up "$POOL_KEY_B") $(sent paired-up "$POOL_KEY_D")" "11 11" \
	    "$k: and 12 at once: 6 more each (the turns are shared by every process)"

	# A quota-exhausted key (Anthropic protocol): set aside the same way.
	for ((i = 0; i < 6; i++)); do
		chat_as "$LLMGATE_MASTER_KEY" quota "quota $i"
		codes+="$STATUS "
	done
	is "$STATUS $(sent quota-up "$POOL_KEY_C") $(sent quota-up "$POOL_KEY_D")" "200 1 6" \
	    "$k: quota exhausted (429): sent once, the other key served all 6"
	is "$(key_health quota 1 'k["state"]')" set_aside "$k: the exhausted key is set aside"

	# Short cooldown: probed again once it has passed.
	r0=$(key_health quick 1 'k["refusals"]')
	chat_as "$LLMGATE_MASTER_KEY" quickly "q 0"
	chat_as "$LLMGATE_MASTER_KEY" quickly "q 1"
	is "$STATUS $(sent quick-up "$POOL_KEY_A")" "200 1" "$k: quick pool: the revoked key sent once"
	quick_is() { [ "$(key_health quick 1 'k["state"]')" = "$1" ]; }
	ok "$k: after key_cooldown_s: probing" wait_until $((SHORT * 5)) quick_is probing
	chat_as "$LLMGATE_MASTER_KEY" quickly "q 2"
	chat_as "$LLMGATE_MASTER_KEY" quickly "q 3"
	is "$STATUS $(sent quick-up "$POOL_KEY_A")" "200 2" \
	    "$k: probed once more, refused, set aside again"
	is "$(key_health quick 1 'k["refusals"]')" $((r0 + 2)) "$k: two more refusals counted"

	# Every key refused: the gateway's own 502, no key in it.
	mock_keys "{\"revoked\": [\"$POOL_KEY_A\", \"$POOL_KEY_B\"]}"
	admin breaker reset pool >/dev/null
	chat_as "$LLMGATE_MASTER_KEY" pooled "all revoked"
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "502 upstream_auth_error" \
	    "$k: every key refused: 502 upstream_auth_error"
	chat_as "$LLMGATE_MASTER_KEY" pooled "all set aside"
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "502 upstream_auth_error" \
	    "$k: both set aside: 502 at once"
	like "$BODY" "set aside|refused" "$k: saying why"
	mock_keys '{}'
	admin breaker reset >/dev/null
	log=$(cat "$SERVER_LOG" $(find "$SERVER_DIR" -name '*log*' -type f) 2>/dev/null)
	unlike "$log" "$POOL_KEY_A|$POOL_KEY_B|$POOL_KEY_C" "$k: no pool key in the server's logs"
	like "$log" "$(fp "$POOL_KEY_A")" "$k: the log names the refused key by fingerprint"
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-lighttpd apache} for_each_server "$CONF" scenario

done_testing
