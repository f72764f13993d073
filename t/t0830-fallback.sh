#!/bin/bash
# t0830-fallback.sh: when the store cannot be written (usage.db and
# ledger.db read-only for the gateway's user) requests are still answered
# and their usage goes to the JSONL fallback file with the right costs;
# llmgate-admin replay imports the file exactly once into usage and ledger
# (balances follow), and check is clean. llmgate-admin recover with every
# gateway stopped leaves a store the server serves from again. Under
# lighttpd (one long-lived process) and Apache mod_fcgid.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0830
export LLMGATE_MASTER_KEY=sk-master-t0830-key
CONF=$TMPDIR_T/llmgate.ini
DATA=$TMPDIR_T/data
FALLBACK=$DATA/usage-fallback.jsonl
IN=12345000 OUT=37500000

write_mock_gateway "$CONF"
cat >>"$CONF" <<EOF
[model mock-a]
provider = mock
upstream = mock-a-up
input_price = 12.345
output_price = 37.5
EOF

cost() { echo $(( ($1 * IN + $2 * OUT + 999999) / 1000000 )); }
upstream_usage() {
	mock_log | jx '"%d %d" % (d["log"][-1]["usage"]["prompt_tokens"], d["log"][-1]["usage"]["completion_tokens"])'
}
rows() {	# KEY: "requests cost" of the key's usage rows
	admin usage --json --key "$1" | jx '"%d %d" % (d["total"]["requests"], d["total"]["cost_micro_usd"])'
}
debits() {	# KEY: "count sum" of the key's ledger debits
	admin ledger "$1" --json --limit 1000 | jx '"%d %d" % (len([e for e in d["data"] if e["type"] == "debit"]), -sum(e["amount_micro_usd"] for e in d["data"] if e["type"] == "debit"))'
}

create_key fk --name fb --prepaid
ok "topup fb 1.00" admin topup fb 1.00

scenario() {
	local k=$SERVER_KIND i p c rid base_rows base_debits want=0 rids=() costs=() \
	    modes out f lines
	base_rows=$(rows fb)
	base_debits=$(debits fb)

	# A request with a writable store: a usage row and a debit, no fallback.
	chat_as "$fk" mock-a hello '"max_tokens":5'
	is "$STATUS" 200 "$k: request with a writable store"
	read -r p c <<<"$(upstream_usage)"
	is "$(rows fb)" "$(( ${base_rows% *} + 1 )) $(( ${base_rows#* } + $(cost "$p" "$c") ))" \
	    "$k: it has its usage row"
	ok "$k: no fallback file yet" test ! -e "$FALLBACK"

	# Read-only usage and ledger databases.
	stop_server
	ok "$k: the store has usage.db and ledger.db" test -f "$DATA/usage.db" -a -f "$DATA/ledger.db"
	modes=$(stat -c '%a' "$DATA/usage.db" "$DATA/ledger.db" | tr '\n' ' ')
	chmod 0440 "$DATA/usage.db" "$DATA/ledger.db"
	ok "$k: $GW_USER cannot write usage.db now" as_gw_user test ! -w "$DATA/usage.db"
	"start_$k" "$CONF"

	for i in 1 2 3; do
		if [ "$i" = 3 ]; then
			out=$(curl -sS -N --max-time 30 -D "$TMPDIR_T/sh" -H "Authorization: Bearer $fk" \
			    -H 'Content-Type: application/json' --data-binary \
			    '{"model":"mock-a","stream":true,"stream_options":{"include_usage":true},"max_tokens":20,"messages":[{"role":"user","content":"fallback stream MOCK{completion_tokens=9}"}]}' \
			    "$GW_URL/v1/chat/completions")
			like "$out" 'data: \[DONE\]' "$k: read-only store: stream $i completes"
			HDRS=$TMPDIR_T/sh
		else
			chat_as "$fk" mock-a "fallback $i" '"max_tokens":5'
			is "$STATUS" 200 "$k: read-only store: request $i answered 200"
		fi
		rid=$(hdr X-Request-Id)
		rids+=("$rid")
		read -r p c <<<"$(upstream_usage)"
		costs+=("$(cost "$p" "$c")")
		want=$((want + $(cost "$p" "$c")))
	done
	ok "$k: the fallback file exists" test -s "$FALLBACK"
	lines=$(wc -l <"$FALLBACK" 2>/dev/null)
	is "${lines:-0}" 3 "$k: one fallback line per request"
	is "$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(" ".join("%s:%d:%d:%d" % (r["request_id"], r["cost_micro_usd"], r["key_id"], r["status"]) for r in rows))' "$FALLBACK" 2>&1)" \
	    "${rids[0]}:${costs[0]}:$fk_ID:200 ${rids[1]}:${costs[1]}:$fk_ID:200 ${rids[2]}:${costs[2]}:$fk_ID:200" \
	    "$k: each line has the request id, the right cost, the key, status 200"
	is "$(python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
print(r["completion_tokens"], r["stream"], r["estimated"], r["served"])' "$FALLBACK" 2>&1)" \
	    "9 True False mock-a" "$k: the stream's line has the upstream's final usage"
	is "$(rows fb)" "$(( ${base_rows% *} + 1 )) $(( ${base_rows#* } + $(cost 2 3) ))" \
	    "$k: read-only store: usage unchanged until the replay"
	api "$fk" GET /billing/usage
	is "$STATUS $(jx '"%d %d" % (d["total"]["requests"], d["total"]["cost_micro_usd"])' <<<"$BODY")" \
	    "200 $(( ${base_rows% *} + 1 )) $(( ${base_rows#* } + $(cost 2 3) ))" \
	    "$k: read-only store: GET /billing/usage still reads the rows"
	api "$fk" GET /billing/transactions
	is "$STATUS $(jx 'len([e for e in d["data"] if e["type"] == "debit"])' <<<"$BODY")" \
	    "200 $(( ${base_debits% *} + 1 ))" "$k: read-only store: GET /billing/transactions still reads the ledger"
	api "$fk" GET /billing/balance
	is "$STATUS" 200 "$k: read-only store: GET /billing/balance"
	ok "$k: the read-only store is logged" grep -sqiE 'read-only|readonly|fallback' "$SERVER_LOG" "$SERVER_DIR"/log/error.log

	# Restore the modes; replay exactly once.
	stop_server
	chmod "${modes%% *}" "$DATA/usage.db"
	modes=${modes#* }
	chmod "${modes%% *}" "$DATA/ledger.db"
	out=$(admin replay 2>&1)
	is "$?" 0 "$k: replay exits 0"
	like "$out" 'imported 3, duplicate 0, bad 0' "$k: replay imports the 3 rows"
	ok "$k: the fallback file was moved aside" test ! -e "$FALLBACK"
	out=$(admin replay 2>&1)
	like "$out" 'imported 0, duplicate 0, bad 0' "$k: a second replay imports nothing"
	f=$(ls -t "$FALLBACK".replayed-* 2>/dev/null | head -n 1)
	ok "$k: the replayed file is kept as $(basename "${f:-none}")" test -n "$f"
	out=$(admin replay "$f" 2>&1)
	like "$out" 'imported 0, duplicate 3, bad 0' "$k: replaying the same file again: 3 duplicates"
	is "$(rows fb)" "$(( ${base_rows% *} + 4 )) $(( ${base_rows#* } + ${costs[0]} + ${costs[1]} + ${costs[2]} + $(cost 2 3) ))" \
	    "$k: usage now holds the 4 requests"
	is "$(debits fb)" "$(( ${base_debits% *} + 4 )) $(( ${base_debits#* } + ${costs[0]} + ${costs[1]} + ${costs[2]} + $(cost 2 3) ))" \
	    "$k: the ledger has 4 more debits"
	out=$(admin ledger fb --json --limit 3)
	is "$(jx 'sorted(e["request_id"] for e in d["data"])' <<<"$out")" \
	    "$(printf '%s\n' "${rids[@]}" | sort | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin]))')" \
	    "$k: the debits carry the fallback requests' ids"
	out=$(admin balance fb --json)
	is "$(jx 'd["balance_micro_usd"] == d["credited_micro_usd"] - d["debited_micro_usd"]' <<<"$out")" true \
	    "$k: balance == credited - debited after the replay"
	is "$(jx 'd["reserved_micro_usd"]' <<<"$out")" 0 "$k: the replay released the reservations"
	out=$(admin check --json)
	is "$?" 0 "$k: check exits 0 after the replay"
	is "$(jx 'd["problems"]' <<<"$out")" '[]' "$k: check: no problems"

	# Recovery with every gateway stopped, then the server serves again.
	out=$(admin recover 2>&1)
	is "$?" 0 "$k: recover exits 0"
	like "$out" "recovered the store in $DATA" "$k: recover says so"
	"start_$k" "$CONF"
	chat_as "$fk" mock-a hello '"max_tokens":5'
	is "$STATUS" 200 "$k: after recover the server serves"
	is "$(rows fb)" "$(( ${base_rows% *} + 5 )) $(( ${base_rows#* } + ${costs[0]} + ${costs[1]} + ${costs[2]} + 2 * $(cost 2 3) ))" \
	    "$k: and records usage in the store"
	ok "$k: no fallback file after recover" test ! -e "$FALLBACK"
	is "$(admin check --json | jx 'd["problems"]')" '[]' "$k: check: no problems after recover"
}

for_each_server_fb() {
	local kind
	for kind in ${LLMGATE_SERVERS:-lighttpd apache}; do
		diag "=== $kind ==="
		"start_$kind" "$CONF"
		scenario
		stop_server
	done
}
for_each_server_fb

done_testing
