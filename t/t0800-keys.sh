#!/bin/bash
# t0800-keys.sh: client API keys under every front end (lighttpd, Apache
# mod_fcgid, nginx + spawn-fcgi, plain CGI): llmgate-admin key create shows
# the secret once and stores only its hash; 401 without a key, with a wrong,
# disabled or expired key; 403 for a model outside the key's list and for a
# client key on an admin route; the master key creates and tops up keys over
# HTTP; /health needs no key, /v1/models does.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0800
export LLMGATE_MASTER_KEY=sk-master-t0800-key
CONF=$TMPDIR_T/llmgate.ini
mkdir -p "$TMPDIR_T/out"

write_mock_gateway "$CONF"
cat >>"$CONF" <<EOF
[model mock-ok]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00

[model mock-other]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00
EOF

SECRETS=()	# every client secret seen: none may reach the data directory

# --- llmgate-admin key create / list / show, before any server ----------------

out=$(admin key create --name alice 2>"$TMPDIR_T/out/create.err")
is "$?" 0 "key create exits 0"
ALICE=$(head -n 1 <<<"$out")
like "$ALICE" '^sk-[A-Za-z0-9]{48}$' "key create: first line is the secret alone"
like "$out" $'\nid: [0-9]+' "key create: then id: N"
like "$out" $'\nname: alice' "key create: then name: alice"
like "$(cat "$TMPDIR_T/out/create.err")" 'store it now: it is not shown again' \
    "key create: the shown-once warning on stderr"
SECRETS+=("$ALICE")
ALICE_PREFIX=${ALICE:0:10}

create_key BOB --name bob --agent bob-agent --models "mock-ok"
SECRETS+=("$BOB")
isnt "$BOB" "$ALICE" "a second key has another secret"

out=$(admin key list)
is "$?" 0 "key list exits 0"
like "$out" alice "key list shows alice"
like "$out" bob "key list shows bob"
like "$out" "$ALICE_PREFIX" "key list shows alice's prefix"
unlike "$out" "${ALICE:10}" "key list never shows alice's secret"
unlike "$out" "${BOB:10}" "key list never shows bob's secret"
out=$(admin key list --json)
is "$(jx '[k["name"] for k in d["data"]] if isinstance(d, dict) else [k["name"] for k in d]' <<<"$out")" \
    '["alice", "bob"]' "key list --json: both keys in id order"
unlike "$out" "${ALICE:10}|${BOB:10}" "key list --json never shows a secret"
out=$(admin key show bob --json)
is "$(jx 'd["agent"]' <<<"$out")" bob-agent "key show bob: agent"
is "$(jx 'd["models"]' <<<"$out")" '["mock-ok"]' "key show bob: models"
unlike "$out" "${BOB:10}" "key show never shows the secret"
out=$(admin key show "$ALICE_PREFIX" --json)
is "$(jx 'd["name"]' <<<"$out")" alice "key show by prefix"
admin key show nobody >/dev/null 2>&1
is "$?" 1 "key show of an unknown key exits 1"
admin key create >/dev/null 2>&1
is "$?" 2 "key create without --name is a usage error (exit 2)"
admin key create --name alice >/dev/null 2>&1
isnt "$?" 0 "a second key named alice is refused"

# --- Names, agents, globs and reasons that could forge a log line --------------
# llmgate-admin and POST /admin/keys, /admin/topup apply the same rules
# (keys_check, keys_check_reason): one word for names and agents, model
# globs without spaces or '=', one line for reasons.

HOSTILE=("a b" "a=b" "x/y" $'a\nb' $'a\tb' 'a"b' "-lead" $'a\x7fb' "key=forged" "")
GOOD_NAME=ok.name@x+y:z
for v in "${HOSTILE[@]}"; do
	q=$(printf '%q' "$v")
	admin key create --name "$v" >/dev/null 2>"$TMPDIR_T/out/bad.err"
	is "$?" 2 "key create --name $q is refused (exit 2)"
	like "$(cat "$TMPDIR_T/out/bad.err")" '^(llmgate-admin: --name: |usage: )' "--name $q: says why"
	[ -n "$v" ] || continue
	admin key create --name "agent-test" --agent "$v" >/dev/null 2>&1
	is "$?" 2 "key create --agent $q is refused"
done
for g in "mock-ok x=y" 'mock"' $'mock\x01' "mock;rm"; do
	admin key create --name glob-test --models "$g" >/dev/null 2>&1
	is "$?" 2 "key create --models $(printf '%q' "$g") is refused"
done
for r in $'line1\nforged=1' $'a\rb' $'a\x1bb' "$(printf 'x%.0s' $(seq 1 128))"; do
	admin topup alice 1 --reason "$r" >/dev/null 2>&1
	is "$?" 2 "topup --reason $(printf '%q' "${r:0:12}") is refused"
	admin adjust alice 1 --reason "$r" >/dev/null 2>&1
	is "$?" 2 "adjust --reason $(printf '%q' "${r:0:12}") is refused"
done
is "$(admin balance alice --json | jx 'd["balance_micro_usd"]')" 0 "no refused reason moved a balance"
create_key GOOD --name "$GOOD_NAME" --agent "$GOOD_NAME" --models "mock-ok, vendor/m-[0-9]*"
SECRETS+=("$GOOD")
is "$(admin key show "$GOOD_NAME" --json | jx 'd["models"]')" '["mock-ok", "vendor/m-[0-9]*"]' \
    "key create: --models split at commas and spaces"
out=$(admin topup "$GOOD_NAME" 0.01 --reason 'refund: 2026-01-02 outage, ticket #7 (50%)')
is "$?" 0 "a reason with spaces and punctuation is fine"

json_str() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }

# HTTP: the same values, the same verdicts.
hostile_http() {
	local k=$1 v q j
	for v in "${HOSTILE[@]}"; do
		q=$(printf '%q' "$v")
		j=$(json_str "$v")
		api "$LLMGATE_MASTER_KEY" POST /admin/keys "{\"name\":$j}"
		is "$STATUS" 400 "$k: POST /admin/keys name $q -> 400"
		is "$(jx 'd["error"]["param"]' <<<"$BODY")" name "$k: name $q: param name"
		[ -n "$v" ] || continue
		api "$LLMGATE_MASTER_KEY" POST /admin/keys "{\"name\":\"agent-test-$k\",\"agent\":$j}"
		is "$STATUS" 400 "$k: POST /admin/keys agent $q -> 400"
		case $v in
		*[[:space:][:cntrl:]=\"]*)
			api "$LLMGATE_MASTER_KEY" POST /admin/keys \
			    "{\"name\":\"glob-test-$k\",\"models\":[\"mock-ok\",$j]}"
			is "$STATUS" 400 "$k: POST /admin/keys models [.., $q] -> 400"
		esac
	done
	api "$LLMGATE_MASTER_KEY" POST /admin/keys '{"name":"nul-test","agent":"a\u0000 key=forged"}'
	is "$STATUS" 400 "$k: an agent cut by \\u0000 -> 400"
	for v in $'line1\nforged=1' $'a\rb' $'a\x1bb' $'a\xc2\x85b' "$(printf 'x%.0s' $(seq 1 128))"; do
		q=$(printf '%q' "${v:0:12}")
		api "$LLMGATE_MASTER_KEY" POST /admin/adjust "{\"key\":\"$GOOD_NAME\",\"amount_usd\":\"1\",\"reason\":$(json_str "$v")}"
		is "$STATUS" 400 "$k: POST /admin/adjust reason $q -> 400"
		is "$(jx 'd["error"]["param"]' <<<"$BODY")" reason "$k: reason $q: param reason"
	done
	api "$LLMGATE_MASTER_KEY" POST /admin/keys "{\"name\":\"$GOOD_NAME-$k\",\"agent\":\"$GOOD_NAME\",\"models\":[\"mock-ok\",\"vendor/m-[0-9]*\"]}"
	is "$STATUS" 201 "$k: what llmgate-admin accepts, HTTP accepts"
	SECRETS+=("$(jx 'd["key"]' <<<"$BODY")")
	is "$(admin balance "$GOOD_NAME" --json | jx 'd["balance_micro_usd"]')" 10000 \
	    "$k: no refused reason moved a balance"

	# Nor can a model name forge fields of the usage line (log_value()
	# would quote it; unit-log.t tests that).
	api "$LLMGATE_MASTER_KEY" POST /v1/chat/completions \
	    '{"model":"mock-ok key=forged agent=root","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 400 "$k: a model name with spaces -> 400"
	unlike "$(cat "$SERVER_LOG" "$SERVER_DIR"/log/error.log 2>/dev/null)" '[^"]key=forged' \
	    "$k: no log line carries a forged key= field"
}

# --- The same under every server ------------------------------------------------

scenarios() {
	local k=$SERVER_KIND key made made_id now

	# /health and readiness need no key; /v1/models does.
	api "" GET /health
	is "$STATUS" 200 "$k: /health without a key -> 200"
	api "" GET /health/readiness
	is "$STATUS" 200 "$k: /health/readiness without a key -> 200"
	api "" GET /v1/models
	is "$STATUS" 401 "$k: /v1/models without a key -> 401"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" missing_api_key "$k: code missing_api_key"
	is "$(jx 'd["error"]["type"]' <<<"$BODY")" invalid_request_error "$k: 401 in the OpenAI shape"
	api "sk-${ALICE:3:40}xxxxxxxx" GET /v1/models
	is "$STATUS" 401 "$k: wrong key -> 401"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" invalid_api_key "$k: code invalid_api_key"
	unlike "$BODY" "${ALICE:10}" "$k: the 401 does not echo a secret"
	api "$ALICE" GET /v1/models
	is "$STATUS" 200 "$k: /v1/models with alice's key -> 200"
	like "$BODY" '"id":"mock-ok"' "$k: model list for alice"
	out=$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Api-Key: $ALICE" "$GW_URL/v1/models")
	is "$out" 200 "$k: the key as X-Api-Key works too"
	api "" POST /v1/chat/completions '{"model":"mock-ok","messages":[{"role":"user","content":"hi"}]}'
	is "$STATUS" 401 "$k: chat without a key -> 401"

	# A chat with a client key.
	chat_as "$ALICE" mock-ok
	is "$STATUS" 200 "$k: chat with alice's key -> 200"
	is "$(jx 'd["choices"][0]["message"]["content"]' <<<"$BODY")" "tok0 tok1 tok2 " "$k: chat content"

	# The key's model list: bob may use mock-ok only.
	chat_as "$BOB" mock-ok
	is "$STATUS" 200 "$k: bob on mock-ok (allowed) -> 200"
	chat_as "$BOB" mock-other
	is "$STATUS" 403 "$k: bob on mock-other (not allowed) -> 403"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" model_not_allowed "$k: code model_not_allowed"
	like "$BODY" mock-other "$k: the 403 names the model"
	api "$BOB" GET /v1/models
	is "$(jx '" ".join(m["id"] for m in d["data"])' <<<"$BODY")" mock-ok \
	    "$k: /v1/models lists only the models bob may use"
	api "$BOB" GET /v1/models/mock-other
	is "$STATUS" 404 "$k: a model bob may not use is not found for him"
	api "$ALICE" GET /v1/models
	ok "$k: alice (no list) sees every model" \
	    test "$(jx 'len(d["data"])' <<<"$BODY")" -ge 2

	# Disabled, enabled again.
	ok "$k: key disable alice" admin key disable alice
	api "$ALICE" GET /v1/models
	is "$STATUS" 401 "$k: disabled key -> 401"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" invalid_api_key "$k: disabled: code invalid_api_key"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" 'disabled' "$k: the message says disabled"
	chat_as "$ALICE" mock-ok
	is "$STATUS" 401 "$k: disabled key cannot chat"
	is "$(admin key show alice --json | jx 'd["disabled"]')" true "$k: key show: disabled true"
	ok "$k: key enable alice" admin key enable alice
	api "$ALICE" GET /v1/models
	is "$STATUS" 200 "$k: enabled again -> 200"

	# Client key on admin routes.
	api "$ALICE" GET /admin/keys
	is "$STATUS" 403 "$k: client key on GET /admin/keys -> 403"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" admin_only "$k: code admin_only"
	api "$ALICE" POST /admin/topup '{"key":"alice","amount_usd":"100.00"}'
	is "$STATUS" 403 "$k: client key cannot top itself up"
	api "$ALICE" POST /admin/keys '{"name":"evil"}'
	is "$STATUS" 403 "$k: client key cannot create keys"
	api "" GET /admin/keys
	is "$STATUS" 401 "$k: /admin/keys without a key -> 401"

	# The master key creates a prepaid key and tops it up.
	made=made-$k
	api "$LLMGATE_MASTER_KEY" POST /admin/keys "{\"name\":\"$made\",\"prepaid\":true,\"models\":[\"mock-*\"]}"
	is "$STATUS" 201 "$k: POST /admin/keys -> 201"
	key=$(jx 'd["key"]' <<<"$BODY")
	like "$key" '^sk-[A-Za-z0-9]{48}$' "$k: the new secret is in the answer"
	is "$(jx 'd["object"]' <<<"$BODY")" api_key "$k: object api_key"
	is "$(jx 'd["prepaid"]' <<<"$BODY")" true "$k: prepaid true"
	is "$(jx 'd["prefix"]' <<<"$BODY")" "${key:0:10}" "$k: prefix is the secret's first 10 characters"
	made_id=$(jx 'd["id"]' <<<"$BODY")
	SECRETS+=("$key")
	api "$LLMGATE_MASTER_KEY" POST /admin/keys "{\"name\":\"$made\"}"
	isnt "$STATUS" 201 "$k: a second key of the same name is refused"
	api "$LLMGATE_MASTER_KEY" POST /admin/keys '{"agent":"x"}'
	is "$STATUS" 400 "$k: POST /admin/keys without a name -> 400"
	api "$LLMGATE_MASTER_KEY" GET /admin/keys
	is "$STATUS" 200 "$k: GET /admin/keys with the master key -> 200"
	like "$(jx '[x["name"] for x in d["data"]]' <<<"$BODY")" "\"$made\"" "$k: the new key is listed"
	unlike "$BODY" "${key:10}|${ALICE:10}|${BOB:10}" "$k: GET /admin/keys shows no secret"
	unlike "$BODY" '"hash"' "$k: nor a hash"
	api "$LLMGATE_MASTER_KEY" GET "/admin/keys/$made_id"
	is "$(jx 'd["name"]' <<<"$BODY")" "$made" "$k: GET /admin/keys/ID"
	api "$LLMGATE_MASTER_KEY" GET "/admin/keys/no-such-key"
	is "$STATUS" 404 "$k: unknown key -> 404"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" key_not_found "$k: code key_not_found"

	api "$key" GET /billing/balance
	is "$STATUS" 200 "$k: the new key reads its balance"
	is "$(jx 'd["balance_micro_usd"]' <<<"$BODY")" 0 "$k: a new key's balance is 0"
	chat_as "$key" mock-ok
	is "$STATUS" 402 "$k: prepaid key without money -> 402"
	api "$LLMGATE_MASTER_KEY" POST /admin/topup "{\"key\":\"$made\",\"amount_usd\":\"1.50\",\"reason\":\"t0800\"}"
	is "$STATUS" 200 "$k: POST /admin/topup -> 200"
	is "$(jx 'd["object"]' <<<"$BODY")" ledger_entry "$k: topup answers a ledger entry"
	is "$(jx 'd["type"]' <<<"$BODY")" topup "$k: of type topup"
	is "$(jx 'd["amount_micro_usd"]' <<<"$BODY")" 1500000 "$k: amount 1.50 USD"
	is "$(jx 'd["balance_micro_usd"]' <<<"$BODY")" 1500000 "$k: balance after the topup"
	api "$LLMGATE_MASTER_KEY" POST /admin/topup "{\"key\":\"$made\",\"amount_usd\":0.25}"
	is "$(jx 'd["balance_micro_usd"]' <<<"$BODY")" 1750000 "$k: a numeric amount_usd tops up too"
	api "$LLMGATE_MASTER_KEY" POST /admin/topup '{"key":"no-such-key","amount_usd":"1"}'
	is "$STATUS" 404 "$k: topup of an unknown key -> 404"
	api "$LLMGATE_MASTER_KEY" POST /admin/topup "{\"key\":\"$made\",\"amount_usd\":\"-1\"}"
	is "$STATUS" 400 "$k: a negative topup -> 400"
	chat_as "$key" mock-ok
	is "$STATUS" 200 "$k: the topped-up key chats"
	api "$key" GET /billing/balance
	ok "$k: balance went down by the request's cost (< 1750000)" \
	    test "$(jx 'd["balance_micro_usd"]' <<<"$BODY")" -lt 1750000
	is "$(admin balance "$made" --json | jx 'd["balance_micro_usd"]')" "$(jx 'd["balance_micro_usd"]' <<<"$BODY")" \
	    "$k: llmgate-admin balance agrees with /billing/balance"

	# Disable and enable over HTTP.
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$made/disable" '{}'
	is "$(jx 'd["disabled"]' <<<"$BODY")" true "$k: POST /admin/keys/NAME/disable"
	api "$key" GET /v1/models
	is "$STATUS" 401 "$k: key disabled over HTTP -> 401"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$made/enable" '{}'
	is "$(jx 'd["disabled"]' <<<"$BODY")" false "$k: POST /admin/keys/NAME/enable"
	api "$key" GET /v1/models
	is "$STATUS" 200 "$k: enabled over HTTP -> 200"

	# Expired keys: one made over HTTP with an expiry a minute ago, and one
	# with an expiry ahead of us.
	now=$(date +%s)
	api "$LLMGATE_MASTER_KEY" POST /admin/keys "{\"name\":\"old-$k\",\"expires\":$((now - 60))}"
	is "$STATUS" 201 "$k: key created already expired"
	key=$(jx 'd["key"]' <<<"$BODY")
	SECRETS+=("$key")
	api "$key" GET /v1/models
	is "$STATUS" 401 "$k: expired key -> 401"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" invalid_api_key "$k: expired: code invalid_api_key"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" 'expired' "$k: the message says expired"
	create_key key --name "fresh-$k" --expires 1d
	SECRETS+=("$key")
	hostile_http "$k"
	api "$key" GET /v1/models
	is "$STATUS" 200 "$k: key expiring tomorrow -> 200"
	is "$(admin key show "fresh-$k" --json | jx '0 < d["expires"] - int(__import__("time").time()) <= 86400 + 60')" \
	    true "$k: --expires 1d is a day ahead"
}

for_each_server "$CONF" scenarios

# --- No secret anywhere in the data directory or the servers' logs --------------

leaks=""
for s in "${SECRETS[@]}"; do
	[ -n "$s" ] || continue
	f=$(grep -rla -- "${s:3}" "$TMPDIR_T/data" 2>/dev/null)
	[ -z "$f" ] || leaks+=" data:${s:0:10}:$f"
	f=$(grep -rla -- "${s:3}" "$TMPDIR_T"/{lighttpd,apache,nginx,cgi} 2>/dev/null)
	[ -z "$f" ] || leaks+=" log:${s:0:10}:$f"
done
is "${#SECRETS[@]}" 19 "19 client secrets collected"
is "$leaks" "" "no client secret in the data directory or the server logs"
ok "the data directory holds the store" test -n "$(ls "$TMPDIR_T/data")"
f=$(grep -rla -- "$LLMGATE_MASTER_KEY" "$TMPDIR_T/data" 2>/dev/null)
is "$f" "" "nor the master key"

done_testing
