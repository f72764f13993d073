#!/bin/bash
# t0880-limits.sh: what is forwarded can never cost more than what was
# reserved. A property test: every combination of the completion-limit
# fields (absent, null, 0, small, above the model's cap, huge, both fields in
# conflict), n, tools, images and stream is sent through the gateway to a
# greedy mock model (it generates the LARGEST limit it was sent, times n);
# the mock's log of what was really forwarded and the gateway's usage rows
# must show one limit field as the gateway decided it, and every cost within
# its reservation. Then a concurrent burst of greedy requests against a
# small prepaid balance and an agent budget: neither is ever overrun. Then
# an upstream that reports more than it was allowed: billed as reported,
# flagged over_reservation, and named by llmgate-admin check.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0880
export LLMGATE_MASTER_KEY=sk-master-t0880-key
CONF=$TMPDIR_T/llmgate.ini
CAP=300					# mock-g's max_tokens
PROP=$top_srcdir/t/limits-property.py
BUDGET=30000				# tier TG: 0.03 USD per agent per day

write_mock_gateway "$CONF" "default_tier = T1"
cat >>"$CONF" <<EOF
[model mock-g]
provider = mock
upstream = mock-g-up
input_price = 1
output_price = 2
max_tokens = $CAP
rpm = 0

[model mock-dear]
provider = mock
upstream = mock-dear-up
input_price = 10
output_price = 40
max_tokens = $CAP
rpm = 0

; Embeddings whose upstream reports the most tokens an honest tokenizer
; could (one per UTF-8 byte of text, one per token id); images.
[model mock-emb]
provider = mock
upstream = mock-emb-up@greedy=1
input_price = 7
rpm = 0

[model mock-img]
provider = mock
upstream = mock-img-up
input_price = 1
image_price = 0.01
rpm = 0

[tier T1]
rpm = 0

[tier TG]
daily_budget = 0.03
EOF

# property SAMPLE-ARGS...: send the generated bodies, check them; sets the
# counts of the check as CNT[name].
declare -A CNT
property() {
	local k=$SERVER_KIND out line
	out=$(python3 "$PROP" send "$GW_URL" "$PK" mock-g "$MOCK_URL" "$TMPDIR_T/cases-$k.json" "$@" 2>&1) ||
	    { fail "$k: the property test ran" "$out"; return 1; }
	admin usage --rows --key "prop-$k" >"$TMPDIR_T/rows-$k.jsonl" ||
	    { fail "$k: usage --rows"; return 1; }
	out=$(python3 "$PROP" check "$TMPDIR_T/cases-$k.json" "$TMPDIR_T/rows-$k.jsonl" $CAP)
	CNT=()
	while IFS=': ' read -r name line; do
		[ "$name" = BAD ] && continue
		CNT[$name]=$line
	done <<<"$out"
	grep '^BAD' <<<"$out" | head -n 10 | while read -r line; do diag "$line"; done
}

scenarios() {
	local k=$SERVER_KIND n out line

	create_key PK --name "prop-$k" --prepaid
	ok "$k: topup" admin topup "prop-$k" 100
	if [ "$k" = lighttpd ]; then
		property --threads 4		# every combination
	else
		property --sample 150 --seed "${#k}" --threads 4
	fi
	n=${CNT[bodies]:-0}
	diag "$k: $n bodies: ${CNT[served]:-?} served, ${CNT[refused_400]:-?} refused (a limit of 0)"
	ok "$k: bodies generated ($n)" test "$n" -gt 0
	is "$(( ${CNT[served]:-0} + ${CNT[refused_400]:-0} ))" "$n" "$k: every body is served or refused 400"
	is "${CNT[refused_forwarded]:-x}" 0 "$k: no refused body reached the upstream"
	is "${CNT[served_once]:-x}" "${CNT[served]:-y}" "$k: every served body was forwarded once"
	is "${CNT[one_limit_field]:-x}" "${CNT[served]:-y}" "$k: exactly one limit field forwarded, always"
	is "${CNT[limit_as_decided]:-x}" "${CNT[served]:-y}" \
	    "$k: the limit forwarded is min(client's limits, null absent; cap $CAP)"
	is "${CNT[n_kept]:-x}" "${CNT[served]:-y}" "$k: n forwarded as asked"
	is "${CNT[rows]:-x}" "${CNT[served]:-y}" "$k: one usage row per served body"
	is "${CNT[greedy_billed]:-x}" "${CNT[served]:-y}" "$k: the greedy model's tokens were billed"
	is "${CNT[cost_within_reservation]:-x}" "${CNT[served]:-y}" \
	    "$k: forwarded worst case <= reservation, for every body"
	is "${CNT[over_reservation_flags]:-x}" 0 "$k: no row flagged over_reservation"
	is "$(admin balance "prop-$k" --json | jx 'd["reserved_micro_usd"]')" 0 "$k: nothing left reserved"

	# Embeddings inputs and images: the reservation bounds what is billed.
	create_key IK --name "inputs-$k" --prepaid
	ok "$k: topup inputs" admin topup "inputs-$k" 10
	python3 "$PROP" inputs "$GW_URL" "$IK" "$TMPDIR_T/inputs-$k.json" >/dev/null
	admin usage --rows --key "inputs-$k" >"$TMPDIR_T/irows-$k.jsonl"
	out=$(python3 "$PROP" check-inputs "$TMPDIR_T/inputs-$k.json" "$TMPDIR_T/irows-$k.jsonl")
	grep '^BAD' <<<"$out" | head -n 5 | while read -r line; do diag "$line"; done
	n=$(sed -n 's/^bodies: //p' <<<"$out")
	ok "$k: inputs: embeddings and image bodies sent (${n:-0})" test "${n:-0}" -ge 10
	is "$(sed -n 's/^served: //p' <<<"$out")" "$n" "$k: inputs: every one served and recorded"
	is "$(sed -n 's/^within: //p' <<<"$out")" "$n" "$k: inputs: every cost > 0 and within its reservation"
	is "$(sed -n 's/^flagged: //p' <<<"$out")" 0 "$k: inputs: none flagged over_reservation"
}

for_each_server "$CONF" scenarios

# --- A concurrent burst of greedy requests against a small balance and a budget --
start_apache "$CONF"
create_key B1 --name burst-1 --agent burst --tier TG --prepaid
create_key B2 --name burst-2 --agent burst --tier TG --prepaid
ok "topup burst-1" admin topup burst-1 0.004
ok "topup burst-2" admin topup burst-2 0.05
mock_clear
N=90
FIRED=()
for ((i = 1; i <= N; i++)); do
	key=$B1
	[ $((i % 2)) -eq 0 ] && key=$B2
	case $((i % 3)) in
	0) extra='"max_tokens":null,"n":2,' ;;
	1) extra='"max_completion_tokens":100000,"max_tokens":1,' ;;
	*) extra='"stream":true,' ;;
	esac
	mkdir -p "$TMPDIR_T/b/$i"
	curl -sS -N --max-time 120 -o "$TMPDIR_T/b/$i/body" -w '%{http_code}' \
	    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
	    --data-binary "{\"model\":\"mock-dear\",$extra\"messages\":[{\"role\":\"user\",\"content\":\"burst $i MOCK{greedy=1,delay=0.05}\"}]}" \
	    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/b/$i/code" 2>/dev/null &
	FIRED+=($!)
done
wait "${FIRED[@]}"
n200=0 nref=0 nother=0
for ((i = 1; i <= N; i++)); do
	case $(cat "$TMPDIR_T/b/$i/code") in
	200) n200=$((n200 + 1)) ;;
	402|429) nref=$((nref + 1)) ;;
	*) nother=$((nother + 1)); diag "burst $i: $(cat "$TMPDIR_T/b/$i/code") $(head -c 200 "$TMPDIR_T/b/$i/body")" ;;
	esac
done
diag "burst: $N requests: $n200 served, $nref refused (402/429), $nother other"
is "$nother" 0 "burst: every answer is 200, 402 or 429"
ok "burst: some were served ($n200)" test "$n200" -ge 3
ok "burst: some were refused ($nref)" test "$nref" -ge 1
for key in burst-1 burst-2; do
	b=$(admin balance "$key" --json)
	ok "burst: $key balance $(jx 'd["balance_micro_usd"]' <<<"$b") >= 0" \
	    test "$(jx 'd["balance_micro_usd"]' <<<"$b")" -ge 0
	is "$(jx 'd["reserved_micro_usd"]' <<<"$b")" 0 "burst: $key nothing left reserved"
done
spent=$(admin usage --rows --key burst-1; admin usage --rows --key burst-2)
is "$(python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print(sum(1 for r in rows if r["over_reservation"] or r["cost_micro_usd"] > r["reserved_micro_usd"]))' <<<"$spent")" 0 \
    "burst: every row within its reservation"
total=$(python3 -c '
import json, sys
print(sum(json.loads(l)["cost_micro_usd"] for l in sys.stdin if l.strip()))' <<<"$spent")
ok "burst: the agent spent $total <= its budget $BUDGET" test "$total" -le $BUDGET
is "$(admin check --json | jx '[d["problems"], d["warnings"]]')" '[[], []]' "burst: check clean, no warnings"

# --- An upstream that goes past the limit it was sent ------------------------
create_key OV --name over --prepaid
ok "topup over" admin topup over 1
chat_as "$OV" mock-g 'too much MOCK{completion_tokens=5000}' '"max_tokens":10'
is "$STATUS" 200 "over: served"
row=$(admin usage --rows --key over | tail -n 1)
is "$(jx '[d["completion_tokens"], d["over_reservation"]]' <<<"$row")" '[5000, true]' \
    "over: billed the 5000 tokens reported, flagged over_reservation"
ok "over: cost $(jx 'd["cost_micro_usd"]' <<<"$row") > reserved $(jx 'd["reserved_micro_usd"]' <<<"$row")" \
    test "$(jx 'd["cost_micro_usd"] > d["reserved_micro_usd"]' <<<"$row")" = true
out=$(admin check --json)
is "$(jx 'd["problems"]' <<<"$out")" '[]' "over: the books still balance"
is "$(jx 'd["over_reservation_rows"]' <<<"$out")" 1 "over: check counts the row"
like "$(jx 'd["warnings"][0]' <<<"$out")" "over.*more than the .* reserved" "over: check names it"
out=$(admin check)
is "$?" 0 "over: check exits 0 (a warning, not a broken book)"
like "$out" 'check: warning: usage row' "over: check prints the warning"

# Images beyond the n asked for are billed, and flagged.
api "$OV" POST /v1/images/generations '{"model":"mock-img","prompt":"cats MOCK{extra_images=3}","n":1}'
is "$STATUS" 200 "over: 4 images for n=1 served"
is "$(jx '[d["cost_micro_usd"], d["over_reservation"]]' <<<"$(admin usage --rows --key over | tail -n 1)")" \
    '[40000, true]' "over: all 4 images billed, flagged over_reservation"

# A prepaid balance driven below zero that way is reported too.
create_key OD --name overdrawn --prepaid
ok "topup overdrawn" admin topup overdrawn 0.001
chat_as "$OD" mock-g 'too much MOCK{completion_tokens=900000}' '"max_tokens":10'
is "$STATUS" 200 "overdraft: served (reserved 10 tokens)"
like "$(admin balance overdrawn --json | jx 'd["balance_micro_usd"]')" '^-' "overdraft: the balance is below zero"
like "$(admin check --json | jx 'd["warnings"]')" 'prepaid key [0-9]+ \(overdrawn\) is overdrawn' \
    "overdraft: check reports the overdrawn prepaid key"
chat_as "$OD" mock-g hello '"max_tokens":1'
is "$STATUS" 402 "overdraft: the key is refused until topped up"

done_testing
