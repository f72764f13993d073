#!/bin/bash
# t0805-keys-manage.sh: key management and reports under real servers.
#   1. llmgate-admin key set changes every field of a key (key update is
#      its alias) and each limit is enforced at once: rpm, tpm, daily and
#      monthly budgets, models, tier, agent, expiry, max_concurrent, the
#      agent header, prepaid;
#   2. key rotate: a new secret, the same id; the old secret 401 at once,
#      or after its grace period (both work meanwhile); balance and usage
#      stay under the id;
#   3. key delete: refused (409 over HTTP) while a slow stream holds money
#      and while a balance is paid in; accepted after; then 401, the books
#      kept, llmgate-admin check clean, the name free again;
#   4. the HTTP forms of each (POST /admin/keys/KEY, /KEY/rotate, DELETE
#      /admin/keys/KEY), master key only, under every server;
#   5. reports by month, provider, tier (several at once), JSON and CSV,
#      CLI and GET /admin/usage, /billing/usage: they match the rows;
#   6. the attack: a key rotated while its streams are in flight (16
#      fired): each request answered 200 is billed once to the key's id,
#      none to nothing; the old secret's later requests 401; the books
#      agree.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0805
export LLMGATE_MASTER_KEY=sk-master-t0805-key
CONF=$TMPDIR_T/llmgate.ini
write_mock_gateway "$CONF" "reservation_ttl = 600" "default_tier = T0"
cat >>"$CONF" <<EOF
[model mock-ok]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00
max_tokens = 100

[model mock-other]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00
max_tokens = 100

[tier T0]

[tier T1]

[tier T2]

[agent sales]
tier = T2
EOF

slow() {	# the body of a slow stream of mock-ok (about N * 0.2 s)
	printf '{"model":"mock-ok","stream":true,"messages":[{"role":"user","content":"slow MOCK{chunks=%s,delay=0.2}"}]}' "$1"
}
fire() {	# OUT KEY BODY: a chat in the background, its status in OUT
	curl -sS --max-time 120 -o /dev/null -w '%{http_code}' \
	    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
	    --data-binary "$3" "$GW_URL/v1/chat/completions" >"$1" 2>/dev/null &
	FIRED+=($!)
}
FIRED=()
wait_fired() { [ ${#FIRED[@]} -eq 0 ] || wait "${FIRED[@]}" 2>/dev/null; FIRED=(); }
open_upstream() {	# requests the mock has begun and not finished
	mock_log | jx 'sum(1 for e in d["log"] if not e.get("done", True))'
}
kshow() { admin key show "$1" --json | jx "$2"; }
reserved_of() { admin balance "$1" --json | jx 'd["reserved_micro_usd"]'; }
rows_of() {	# KEY-ID: usage rows of a key id
	admin usage --rows --key "$1" --from 2000-01-01 | wc -l
}

# --- 1. key set: every field, before any server ----------------------------------

create_key K1 --name k1
out=$(admin key set k1 --rpm 7 --tpm 900 --daily-budget 3 --monthly-budget 40 \
    --max-concurrent 4 --tier T1 --agent k1-agent --models "mock-ok, mock-o*" \
    --expires 2d --allow-agent-header --prepaid --json)
is "$?" 0 "key set with every option exits 0"
is "$(jx '[d[f] for f in ("rpm","tpm","daily_budget_micro_usd","monthly_budget_micro_usd","max_concurrent","tier","agent","models","prepaid","allow_agent_header")]' <<<"$out")" \
    '[7, 900, 3000000, 40000000, 4, "T1", "k1-agent", ["mock-ok", "mock-o*"], true, true]' \
    "key set: every field set"
ok "key set: --expires 2d is two days ahead" \
    test "$(jx 'd["expires"] - int(__import__("time").time())' <<<"$out")" -gt 170000
is "$(jx 'd["id"]' <<<"$out")" "$K1_ID" "key set keeps the id"
out=$(admin key update k1 --rpm 0 --tpm 0 --daily-budget 0 --monthly-budget 0 \
    --max-concurrent 0 --tier '' --agent '' --models '' --expires never \
    --no-agent-header --no-prepaid --json)
is "$(jx '[d[f] for f in ("rpm","tpm","daily_budget_micro_usd","monthly_budget_micro_usd","max_concurrent","tier","agent","models","prepaid","allow_agent_header","expires")]' <<<"$out")" \
    '[0, 0, 0, 0, 0, null, null, [], false, false, null]' \
    "key update (the alias): 0, '' and never clear every field"
admin key set k1 --tier NOPE >/dev/null 2>"$TMPDIR_T/err"
is "$?" 1 "key set --tier of no [tier] exits 1"
like "$(cat "$TMPDIR_T/err")" 'no \[tier NOPE\]' "and says so"
create_key K1B --name k1b
admin key set k1b --name k1 >/dev/null 2>"$TMPDIR_T/err"
is "$?" 1 "key set --name of another key's name is refused"
like "$(cat "$TMPDIR_T/err")" 'a key named k1 exists' "and says so"
admin key set k1b --name "a b" >/dev/null 2>&1
is "$?" 2 "key set --name with a space: usage error"
admin key set k1b >/dev/null 2>&1
is "$?" 2 "key set without an option: usage error"
ok "key set --name renames" admin key set k1b --name k1-renamed
is "$(kshow "$K1B_ID" 'd["name"]')" k1-renamed "the key shows its new name"

# --- per server ------------------------------------------------------------------

limits() {	# each limit set with key set is enforced at once
	local k=$SERVER_KIND i d
	chat_as "$K1" mock-ok
	is "$STATUS" 200 "$k: k1 without limits chats"

	admin key set k1 --rpm 2 >/dev/null
	chat_as "$K1" mock-ok; chat_as "$K1" mock-ok; chat_as "$K1" mock-ok
	is "$STATUS" 429 "$k: --rpm 2: the third request of the minute -> 429"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" rate_limit_exceeded "$k: rpm: rate_limit_exceeded"
	admin key set k1 --rpm 0 >/dev/null
	chat_as "$K1" mock-ok
	is "$STATUS" 200 "$k: --rpm 0 lifts it"

	admin key set k1 --tpm 5 >/dev/null
	chat_as "$K1" mock-ok
	is "$STATUS" 429 "$k: --tpm 5 (a request may take 100 tokens) -> 429"
	admin key set k1 --tpm 0 >/dev/null

	admin key set k1 --daily-budget 0.000001 >/dev/null
	chat_as "$K1" mock-ok
	is "$STATUS" 429 "$k: --daily-budget 0.000001 -> 429"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" budget_exceeded "$k: daily: budget_exceeded"
	admin key set k1 --daily-budget 0 --monthly-budget 0.000001 >/dev/null
	chat_as "$K1" mock-ok
	is "$STATUS" 429 "$k: --monthly-budget 0.000001 -> 429"
	admin key set k1 --monthly-budget 0 >/dev/null

	admin key set k1 --models mock-other >/dev/null
	chat_as "$K1" mock-ok
	is "$STATUS" 403 "$k: --models mock-other: mock-ok -> 403"
	chat_as "$K1" mock-other
	is "$STATUS" 200 "$k: and mock-other -> 200"
	admin key set k1 --models '' >/dev/null

	admin key set k1 --expires never --prepaid >/dev/null
	chat_as "$K1" mock-ok
	is "$STATUS" 402 "$k: --prepaid without money -> 402"
	admin key set k1 --no-prepaid >/dev/null

	# Tier and agent: the usage row bills them.
	admin key set k1 --tier T1 --agent k1-agent >/dev/null
	chat_as "$K1" mock-ok "tier-$k"
	is "$STATUS" 200 "$k: --tier T1 --agent k1-agent: 200"
	is "$(admin usage --rows --key k1 | tail -n 1 | jx '[d["tier"], d["agent"]]')" \
	    '["T1", "k1-agent"]' "$k: the usage row has the tier and agent set"
	curl -sS -o /dev/null -H "Authorization: Bearer $K1" -H 'X-Agent: sales' \
	    -H 'Content-Type: application/json' --data-binary "$(chat_json mock-ok hi)" \
	    "$GW_URL/v1/chat/completions"
	is "$(admin usage --rows --key k1 | tail -n 1 | jx 'd["agent"]')" k1-agent \
	    "$k: X-Agent ignored without --allow-agent-header"
	admin key set k1 --allow-agent-header >/dev/null
	curl -sS -o /dev/null -H "Authorization: Bearer $K1" -H 'X-Agent: sales' \
	    -H 'Content-Type: application/json' --data-binary "$(chat_json mock-ok hi)" \
	    "$GW_URL/v1/chat/completions"
	is "$(admin usage --rows --key k1 | tail -n 1 | jx 'd["agent"]')" sales \
	    "$k: --allow-agent-header: X-Agent names the agent"
	admin key set k1 --no-agent-header --tier '' --agent '' >/dev/null

	# Expiry (over HTTP: a past one), then never.
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$K1_ID" "{\"expires\":$(( $(date +%s) - 60 ))}"
	is "$STATUS" 200 "$k: POST /admin/keys/ID expires in the past -> 200"
	chat_as "$K1" mock-ok
	is "$STATUS" 401 "$k: an expired key -> 401"
	admin key set k1 --expires never >/dev/null
	chat_as "$K1" mock-ok
	is "$STATUS" 200 "$k: --expires never: 200 again"

	# max_concurrent: a slow stream holds the one slot.
	admin key set k1 --max-concurrent 1 >/dev/null
	d=$TMPDIR_T/mc-$k; mkdir -p "$d"
	fire "$d/s" "$K1" "$(slow 25)"
	wait_until 20 eval '[ "$(reserved_of k1)" -gt 0 ]'
	chat_as "$K1" mock-ok
	is "$STATUS" 429 "$k: --max-concurrent 1 with a stream in flight -> 429"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" too_many_concurrent_requests "$k: code too_many_concurrent_requests"
	wait_fired
	is "$(cat "$d/s")" 200 "$k: the slow stream ended 200"
	admin key set k1 --max-concurrent 0 >/dev/null
}

http_forms() {	# POST /admin/keys/KEY, /rotate, /disable, /enable, DELETE
	local k=$SERVER_KIND name=h-$SERVER_KIND id sec new n
	api "$LLMGATE_MASTER_KEY" POST /admin/keys "{\"name\":\"$name\"}"
	is "$STATUS" 201 "$k: POST /admin/keys -> 201"
	id=$(jx 'd["id"]' <<<"$BODY"); sec=$(jx 'd["key"]' <<<"$BODY")
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$id" \
	    '{"rpm":5,"tpm":1000,"daily_budget_usd":"2.5","monthly_budget_micro_usd":9000000,"max_concurrent":3,"tier":"T2","agent":"ag","models":["mock-*"],"prepaid":false,"allow_agent_header":true}'
	is "$STATUS" 200 "$k: POST /admin/keys/ID sets every field -> 200"
	is "$(jx '[d[f] for f in ("rpm","tpm","daily_budget_micro_usd","monthly_budget_micro_usd","max_concurrent","tier","agent","models","allow_agent_header")]' <<<"$BODY")" \
	    '[5, 1000, 2500000, 9000000, 3, "T2", "ag", ["mock-*"], true]' "$k: the answer shows them"
	is "$(kshow "$id" 'd["daily_budget_micro_usd"]')" 2500000 "$k: and the store has them"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$name" '{"tier":null,"agent":null,"models":null,"rpm":null}'
	is "$(jx '[d["tier"], d["agent"], d["models"], d["rpm"]]' <<<"$BODY")" '[null, null, [], 0]' \
	    "$k: null clears a field (by name)"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$id" '{"rpm":-1}'
	is "$STATUS" 400 "$k: rpm -1 -> 400"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$id" '{"tier":"NOPE"}'
	is "$STATUS" 400 "$k: an unknown tier -> 400"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$id" '{"colour":"red"}'
	is "$STATUS" 400 "$k: an unknown field -> 400"
	is "$(jx 'd["error"]["param"]' <<<"$BODY")" colour "$k: the 400 names it"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$id" '{"name":"k1"}'
	is "$STATUS" 409 "$k: another key's name -> 409"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$id" '{"disabled":true}'
	chat_as "$sec" mock-ok
	is "$STATUS" 401 "$k: disabled through POST /admin/keys/ID -> 401"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$id/enable" ''
	chat_as "$sec" mock-ok
	is "$STATUS" 200 "$k: /enable -> 200"
	api "$sec" POST "/admin/keys/$id/rotate" '{}'
	is "$STATUS" 403 "$k: a client key cannot rotate"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$id/rotate" '{"grace_s":-1}'
	is "$STATUS" 400 "$k: grace_s -1 -> 400"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$id/rotate" '{"grace_s":0}'
	is "$STATUS" 200 "$k: POST /admin/keys/ID/rotate -> 200"
	new=$(jx 'd["key"]' <<<"$BODY")
	like "$new" '^sk-[A-Za-z0-9]{48}$' "$k: the answer has the new secret"
	is "$(jx '[d["id"], d["prefix"]]' <<<"$BODY")" "[$id, \"${new:0:10}\"]" "$k: same id, the new prefix"
	chat_as "$sec" mock-ok
	is "$STATUS" 401 "$k: the old secret -> 401 at once"
	chat_as "$new" mock-ok
	is "$STATUS" 200 "$k: the new one -> 200"
	api "$LLMGATE_MASTER_KEY" GET "/admin/keys/$id"
	unlike "$BODY" "${new:10}" "$k: GET /admin/keys/ID never shows the secret"
	api "$new" DELETE "/admin/keys/$id"
	is "$STATUS" 403 "$k: a client key cannot delete"
	api "$LLMGATE_MASTER_KEY" DELETE "/admin/keys/no-such"
	is "$STATUS" 404 "$k: DELETE of no key -> 404"
	api "$LLMGATE_MASTER_KEY" POST /admin/topup "{\"key\":$id,\"amount_usd\":\"0.50\"}"
	api "$LLMGATE_MASTER_KEY" DELETE "/admin/keys/$id"
	is "$STATUS" 409 "$k: DELETE with a balance paid in -> 409"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" key_has_balance "$k: code key_has_balance"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" 'refund' "$k: it says how to proceed"
	api "$LLMGATE_MASTER_KEY" POST /admin/adjust \
	    "{\"key\":$id,\"amount_usd\":\"-$(admin balance "$id" --json | jx 'd["balance_usd"]')\",\"reason\":\"refund\"}"
	is "$STATUS" 200 "$k: refunded"
	n=$(admin ledger "$id" --json --limit 1000 | jx 'len(d["data"])')
	api "$LLMGATE_MASTER_KEY" DELETE "/admin/keys/$id"
	is "$STATUS" 200 "$k: DELETE /admin/keys/ID -> 200"
	is "$(jx 'd["deleted"]' <<<"$BODY")" true "$k: the answer says deleted"
	chat_as "$new" mock-ok
	is "$STATUS" 401 "$k: a deleted key -> 401"
	api "$LLMGATE_MASTER_KEY" GET /admin/keys
	unlike "$(jx '[x["name"] for x in d["data"]]' <<<"$BODY")" "\"$name\"" "$k: GET /admin/keys leaves it out"
	api "$LLMGATE_MASTER_KEY" GET "/admin/keys/$id"
	is "$(jx 'd["deleted"]' <<<"$BODY")" true "$k: GET /admin/keys/ID still shows it, deleted"
	api "$LLMGATE_MASTER_KEY" DELETE "/admin/keys/$id"
	is "$STATUS" 404 "$k: deleted twice -> 404"
	api "$LLMGATE_MASTER_KEY" PUT "/admin/keys/$id" '{}'
	is "$STATUS" 405 "$k: PUT -> 405"
	like "$(hdr Allow)" 'DELETE' "$k: Allow names DELETE"
	is "$(admin ledger "$id" --json --limit 1000 | jx 'len(d["data"])')" "$n" "$k: its ledger is kept"
}

rotate_cli() {	# key rotate: at once, and with a grace period
	local k=$SERVER_KIND old new bal
	create_key R --name "r-$k"
	admin topup "r-$k" 1 >/dev/null
	chat_as "$R" mock-ok
	is "$STATUS" 200 "$k: r chats before its rotation"
	bal=$(admin balance "r-$k" --json | jx 'd["balance_micro_usd"]')
	out=$(admin key rotate "r-$k" --json 2>"$TMPDIR_T/err")
	is "$?" 0 "$k: key rotate exits 0"
	like "$(cat "$TMPDIR_T/err")" 'not shown again' "$k: rotate: the shown-once warning"
	new=$(jx 'd["key"]' <<<"$out")
	is "$(jx 'd["id"]' <<<"$out")" "$R_ID" "$k: rotate keeps the id"
	chat_as "$R" mock-ok
	is "$STATUS" 401 "$k: the old secret -> 401 at once"
	chat_as "$new" mock-ok
	is "$STATUS" 200 "$k: the new secret -> 200"
	is "$(rows_of "$R_ID")" 2 "$k: the key's usage rows: before and after"
	ok "$k: the balance went on from where it was" \
	    test "$(admin balance "$R_ID" --json | jx 'd["balance_micro_usd"]')" -lt "$bal"
	is "$(admin ledger "$R_ID" --json | jx 'len(d["data"])')" 3 "$k: the ledger too (topup, 2 debits)"
	old=$new
	out=$(admin key rotate "$R_ID" --grace 2 --json 2>/dev/null)
	new=$(jx 'd["key"]' <<<"$out")
	chat_as "$old" mock-ok
	is "$STATUS" 200 "$k: --grace 2: the old secret still works"
	chat_as "$new" mock-ok
	is "$STATUS" 200 "$k: and so does the new one"
	wait_until 15 eval 'chat_as "$old" mock-ok; [ "$STATUS" = 401 ]'
	is "$STATUS" 401 "$k: after the grace the old secret -> 401"
	chat_as "$new" mock-ok
	is "$STATUS" 200 "$k: the new one still works"
	# A second rotation ends a secret still in its grace at once.
	old=$new
	out=$(admin key rotate "$R_ID" --grace 600 --json 2>/dev/null)
	new=$(jx 'd["key"]' <<<"$out")
	admin key rotate "$R_ID" --json >/dev/null 2>&1
	chat_as "$old" mock-ok
	is "$STATUS" 401 "$k: a rotation ends the grace of an earlier secret"
	chat_as "$new" mock-ok
	is "$STATUS" 401 "$k: and the secret it replaced"
}

delete_cli() {	# refused while a stream holds money; books kept after
	local k=$SERVER_KIND d=$TMPDIR_T/del-$SERVER_KIND out rows
	mkdir -p "$d"
	create_key D --name "d-$k"
	chat_as "$D" mock-ok
	fire "$d/s" "$D" "$(slow 60)"
	ok "$k: the stream holds money" \
	    wait_until 30 eval '[ "$(reserved_of "d-$k")" -gt 0 ]'
	out=$(admin key delete "d-$k" 2>&1)
	is "$?" 1 "$k: key delete with a stream in flight exits 1"
	like "$out" 'requests in flight' "$k: and says why"
	like "$out" 'key disable' "$k: and how to proceed"
	api "$LLMGATE_MASTER_KEY" DELETE "/admin/keys/$D_ID"
	is "$STATUS" 409 "$k: DELETE with a stream in flight -> 409"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" key_in_use "$k: code key_in_use"
	api "$LLMGATE_MASTER_KEY" POST "/admin/keys/$D_ID/disable" ''
	is "$(jx 'd["disabled"]' <<<"$BODY")" true "$k: disable stops new requests"
	wait_fired
	is "$(cat "$d/s")" 200 "$k: the stream in flight still ended 200"
	wait_until 30 eval '[ "$(reserved_of "$D_ID")" -eq 0 ]'
	rows=$(rows_of "$D_ID")
	is "$rows" 2 "$k: both requests have their usage row"
	out=$(admin key delete "d-$k")
	is "$?" 0 "$k: key delete once nothing is held exits 0"
	like "$out" 'kept' "$k: it says the books are kept"
	admin key enable "$D_ID" >/dev/null 2>&1
	isnt "$?" 0 "$k: a deleted key cannot be enabled"
	chat_as "$D" mock-ok
	is "$STATUS" 401 "$k: the deleted key -> 401"
	is "$(rows_of "$D_ID")" "$rows" "$k: its usage rows are kept"
	is "$(kshow "$D_ID" 'd["state"]')" deleted "$k: key show ID: state deleted"
	unlike "$(admin key list)" " d-$k " "$k: key list leaves it out"
	out=$(admin check 2>&1)
	is "$?" 0 "$k: llmgate-admin check is clean after the delete"
	like "$out" ' 0 problems' "$k: 0 problems"
	create_key D2 --name "d-$k"
	isnt "$D2_ID" "$D_ID" "$k: the name is free again, for a new key"
}

rotate_attack() {	# 16 streams in flight, rotated under them
	local k=$SERVER_KIND d=$TMPDIR_T/att-$SERVER_KIND i ok200=0 n401=0 other=0 inflight
	mkdir -p "$d"
	create_key A --name "att-$k"
	mock_clear
	for i in $(seq 1 16); do fire "$d/$i" "$A" "$(slow 25)"; done
	# As many as the server's workers take at once (its pool may queue
	# the rest: those authenticate after the rotation, and get 401).
	wait_until 30 eval '[ "$(open_upstream)" -ge 4 ]'
	inflight=$(open_upstream)
	ok "$k attack: streams in flight upstream when rotated ($inflight)" \
	    test "$inflight" -ge 4
	admin key rotate "att-$k" >/dev/null 2>&1
	for i in $(seq 17 24); do fire "$d/$i" "$A" "$(slow 2)"; done
	wait_fired
	for i in $(seq 1 24); do
		case $(cat "$d/$i") in
		200) ok200=$((ok200 + 1)) ;;
		401) n401=$((n401 + 1)) ;;
		*) other=$((other + 1)) ;;
		esac
	done
	diag "rotate attack: $ok200 answered 200, $n401 got 401, $other else"
	is "$other" 0 "$k attack: every answer 200 or 401"
	ok "$k attack: the 8 requests with the old secret after the rotation -> 401" \
	    test "$n401" -ge 8
	ok "$k attack: the streams in flight when rotated ended 200 ($ok200)" \
	    test "$ok200" -ge "$inflight"
	is "$(admin usage --rows --key "$A_ID" | python3 -c '
import json, sys
print(sum(1 for l in sys.stdin if json.loads(l)["status"] == 200))')" "$ok200" \
	    "$k attack: each 200 has one usage row under the key's id"
	is "$(admin usage --rows | python3 -c '
import json, sys
print(sum(1 for l in sys.stdin if json.loads(l)["key_id"] == 0 and json.loads(l)["key_name"] != "master"))')" 0 \
	    "$k attack: no row billed to nothing"
	is "$(reserved_of "att-$k")" 0 "$k attack: nothing stays reserved"
	out=$(admin check --json)
	is "$(jx 'd["problems"]' <<<"$out")" '[]' "$k attack: check: the books agree"
}

reports() {	# by month, provider, tier: they match the rows
	local k=$SERVER_KIND rows out
	rows=$TMPDIR_T/rows-$k.jsonl
	admin usage --rows --from 2000-01-01 >"$rows"
	ok "$k: there are rows to report" test -s "$rows"
	sum_rows() {	# GROUPS: what the rows add up to, by those groupings
		python3 -c '
import json, sys, time
by = sys.argv[1].split(",")
def val(r, g):
    t = time.gmtime(r["time_us"] // 1000000)
    return {"month": time.strftime("%Y-%m", t), "day": time.strftime("%Y-%m-%d", t),
            "provider": r["provider"] or "-", "tier": r["tier"] or "-",
            "agent": r["agent"], "model": r["served"] or r["requested"]}[g]
s = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    k = tuple(val(r, g) for g in by)
    a = s.setdefault(k, [0, 0, 0, 0, 0])
    a[0] += 1; a[1] += r["status"] >= 400; a[2] += r["prompt_tokens"]
    a[3] += r["completion_tokens"]; a[4] += r["cost_micro_usd"]
print(json.dumps(sorted([list(k) + v for k, v in s.items()])))' "$1" "$rows"
	}
	report_sums() {	# GROUPS: the same from a JSON report on stdin
		python3 -c '
import json, sys
by = sys.argv[1].split(",")
d = json.load(sys.stdin)
print(json.dumps(sorted([[r[g] for g in by] + [r["requests"], r["errors"], r["prompt_tokens"],
    r["completion_tokens"], r["cost_micro_usd"]] for r in d["data"]])))' "$1"
	}
	for g in month,provider tier provider,tier,month; do
		is "$(admin usage --json --from 2000-01-01 --group-by "$g" | report_sums "$g")" \
		    "$(sum_rows "$g")" "$k: usage --group-by $g matches the rows"
	done
	api "$LLMGATE_MASTER_KEY" GET "/admin/usage?from=2000-01-01&group_by=month,provider"
	is "$STATUS" 200 "$k: GET /admin/usage -> 200"
	is "$(report_sums month,provider <<<"$BODY")" "$(sum_rows month,provider)" \
	    "$k: GET /admin/usage?group_by=month,provider matches the rows"
	is "$(jx 'd["group_by"]' <<<"$BODY")" month,provider "$k: group_by named"
	ok "$k: latency p50 <= p95" test "$(jx 'all(r["latency_p50_ms"] <= r["latency_p95_ms"] for r in d["data"] if r["latency_p50_ms"] is not None) and d["total"]["latency_p50_ms"] > 0' <<<"$BODY")" = true
	out=$(curl -sS -D "$TMPDIR_T/h" -H "Authorization: Bearer $LLMGATE_MASTER_KEY" \
	    "$GW_URL/admin/usage?from=2000-01-01&group_by=tier,provider&format=csv")
	like "$(tr -d '\r' <"$TMPDIR_T/h")" $'[Cc]ontent-[Tt]ype: text/csv' "$k: format=csv is text/csv"
	is "$(head -n 1 <<<"$out")" \
	    tier,provider,requests,errors,prompt_tokens,completion_tokens,cached_tokens,cache_write_tokens,cost_micro_usd,cost_usd,latency_p50_ms,latency_p95_ms \
	    "$k: the CSV header names each grouping"
	is "$(tail -n +2 <<<"$out" | awk -F, '{ n += $3 } END { print n }')" "$(wc -l <"$rows")" \
	    "$k: the CSV rows add up to every request"
	is "$(admin usage --csv --from 2000-01-01 --group-by tier,provider)" "$out" \
	    "$k: llmgate-admin usage --csv says the same"
	api "$LLMGATE_MASTER_KEY" GET "/admin/usage?group_by=week"
	is "$STATUS" 400 "$k: group_by=week -> 400"
	api "$LLMGATE_MASTER_KEY" GET "/admin/usage?group_by=day,day"
	is "$STATUS" 400 "$k: a grouping twice -> 400"
	api "$LLMGATE_MASTER_KEY" GET "/admin/usage?format=xml"
	is "$STATUS" 400 "$k: format=xml -> 400"
	api "$K1" GET /admin/usage
	is "$STATUS" 403 "$k: a client key on /admin/usage -> 403"
	api "$K1" GET "/billing/usage?from=2000-01-01&group_by=month,model"
	is "$STATUS" 200 "$k: a client key's own usage by month,model"
	is "$(jx 'd["total"]["requests"]' <<<"$BODY")" \
	    "$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["key_id"] == int(sys.argv[2])))' "$rows" "$K1_ID")" \
	    "$k: only its own rows"
}

scenarios() {
	if on_first_server; then
		limits
		rotate_attack
	fi
	http_forms
	rotate_cli
	delete_cli
	on_first_server && reports
}

for_each_server "$CONF" scenarios

done_testing
