#!/bin/bash
# t0840-disconnect.sh: a client that leaves in the middle of a stream is
# billed for what it was sent: its usage row says client_aborted, holds the
# tokens streamed so far (estimated: the upstream's final usage never came)
# and a cost above zero but below the whole answer's; the ledger has the
# debit and the reservation is released. Under every front end.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0840
export LLMGATE_MASTER_KEY=sk-master-t0840-key
CONF=$TMPDIR_T/llmgate.ini
write_mock_gateway "$CONF"
cat >>"$CONF" <<EOF
[model mock-ok]
provider = mock
input_price = 100
output_price = 1000
EOF

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

scenarios() {
	local k=$kind out rid n	# for_each_server's loop variable
	create_key KEY --name "leaver-$k" --prepaid
	admin topup "leaver-$k" 5 >/dev/null

	# 150 chunks 0.2 s apart; the client hangs up once it has read four
	# events (the role and three pieces), however loaded the machine.
	gw_sse --leave-after 4 -D "$TMPDIR_T/h" \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d '{"model":"mock-ok","stream":true,"messages":[{"role":"user","content":"MOCK{chunks=150,delay=0.2}"}]}' \
	    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/body" 2>&1
	rid=$(tr -d '\r' <"$TMPDIR_T/h" | awk -F': ' 'tolower($1) == "x-request-id" {print $2}')
	ok "$k: the stream began (request id $rid)" test -n "$rid"
	n=$(grep -c '^[0-9.]* data: {' "$TMPDIR_T/body")
	is "$n" 4 "$k: four events arrived before the client left"
	ok "$k: the row is written once the gateway notices" \
	    wait_until 20 row_status_is "$rid" 200
	is "$(row "$rid" 'd["client_aborted"]')" True "$k: client_aborted"
	is "$(row "$rid" 'd["estimated"]')" True "$k: tokens estimated (no final usage came)"
	is "$(row "$rid" 'd["stream"]')" True "$k: stream flag"
	out=$(row "$rid" 'd["completion_tokens"]')
	ok "$k: completion tokens counted for what was streamed ($out)" test "$out" -ge 1 -a "$out" -lt 60
	out=$(row "$rid" 'd["cost_micro_usd"]')
	ok "$k: billed above zero ($out micro-USD)" test "$out" -gt 0
	is "$(admin ledger "leaver-$k" --json | jx '" ".join(e["request_id"] for e in d["data"] if e["type"] == "debit")')" \
	    "$rid" "$k: one ledger debit for it"
	is "$(admin ledger "leaver-$k" --json | jx '-[e["amount_micro_usd"] for e in d["data"] if e["type"] == "debit"][0]')" \
	    "$out" "$k: the debit is the row's cost"
	is "$(admin balance "leaver-$k" --json | jx 'd["reserved_micro_usd"]')" 0 \
	    "$k: nothing stays reserved"
	is "$(admin balance "leaver-$k" --json | jx 'd["balance_micro_usd"]')" $((5000000 - out)) \
	    "$k: balance = top-up - cost"
}

for_each_server "$CONF" scenarios

done_testing
