#!/bin/bash
# t0812-windows.sh: the accounting's time windows on a clock the test sets.
# The gateway is t/llmgate-fault (make check builds it with
# LLMGATE_FAULT_INJECTION), whose accounting clock (store_wall) runs ahead
# by the seconds in $LLMGATE_FAULT_DIR/clock, read at every request by
# every process: each scenario puts the gateway at a second it chooses,
# so nothing waits for the calendar and no run straddles a minute by
# chance. Under lighttpd and Apache mod_fcgid (several processes: the
# windows are the store's, shared by all):
# - per key (--rpm 3), from second 1 of a minute: three requests pass with
#   2, 1, 0 remaining; the fourth gets 429 rate_limit_exceeded with
#   Retry-After exactly the seconds to the next minute (at the second the
#   gateway recorded it) and the x-ratelimit-* headers, its usage row an
#   error at no cost; the master key is not limited; in the next minute
#   the window restarts (three pass again, 2, 1, 0 remaining, then 429);
# - six concurrent requests of one key in one minute: exactly three pass,
#   and three again in the next minute;
# - per model (rpm = 3 across the gateway), per model family (a snapshot
#   shares its model's rpm of 2), tokens per minute per key (admission
#   counts the bound, settlement trues it up): each refuses the request
#   past its limit and admits again in the next minute;
# - a key's daily budget spent to its limit before midnight UTC: 429
#   budget_exceeded with Retry-After the seconds to midnight; past
#   midnight admitted again, and GET /usage shows today's spend restarted
#   while the month's goes on;
# - a key's monthly budget the same across the end of a month.
. "$(dirname "$0")/lib.sh"

FAULT_BIN=${LLMGATE_FAULT:-$top_builddir/t/llmgate-fault}
[ -x "$FAULT_BIN" ] || bail "$FAULT_BIN is missing: make t/llmgate-fault (make check builds it)"

setup_tmp
use_binary_copies
cp "$FAULT_BIN" "$TMPDIR_T/bin/llmgate" || bail "cannot copy $FAULT_BIN"
chmod 0755 "$TMPDIR_T/bin/llmgate"
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0812
export LLMGATE_MASTER_KEY=sk-master-t0812-key
export LLMGATE_FAULT_DIR=$TMPDIR_T/faults
GW_PASSENV=LLMGATE_FAULT_DIR
mkdir -p "$LLMGATE_FAULT_DIR"
chown "$GW_USER:$GW_GROUP" "$LLMGATE_FAULT_DIR"
CONF=$TMPDIR_T/llmgate.ini

A_IN=12345000 A_OUT=37500000	# mock-a: 12.345 and 37.5 USD per 1M tokens
SMALL=138			# mock-a, "hello", 5 tokens: 2 in, 3 out
BUDGET=2000			# --daily-budget, --monthly-budget 0.002

# The gateway's times: a minute, a midnight, a month's end (UTC).
W=$(date -u -d '2030-06-15 12:00:00' +%s)
MIDNIGHT=$(date -u -d '2030-06-21 00:00:00' +%s)
MONTH_END=$(date -u -d '2030-07-01 00:00:00' +%s)
FROM=2030-01-01 TO=2031-01-01	# admin usage: every row of these

write_mock_gateway "$CONF" "default_tier = T1"
cat >>"$CONF" <<EOF
[model mock-a]
provider = mock
upstream = mock-a-up
input_price = 12.345
output_price = 37.5

[tier T1]
rpm = 0
EOF
# Each front end's own models: the model windows are the gateway's.
for k in lighttpd apache nginx cgi; do
	printf '\n[model rpm-%s]\nprovider = mock\nupstream = mock\ninput_price = 1\noutput_price = 1\nrpm = 3\n' "$k"
	printf '\n[model mock-r-%s]\nprovider = mock\nupstream = mock-r-up\ninput_price = 1\noutput_price = 1\nrpm = 2\n' "$k"
	printf '\n[model mock-r-%s-20*]\nlike = mock-r-%s\n' "$k" "$k"
done >>"$CONF"

# clock_at T: from now on the gateway's clock reads T (unix seconds) and
# runs on from there. The offset from this shell's clock, which is never
# ahead of the gateway's, is renamed into place: no process reads half of
# it. A request sent after this is stamped T or a little later, never
# earlier.
clock_at() {
	printf '%d\n' $(($1 - EPOCHSECONDS)) >"$LLMGATE_FAULT_DIR/clock.new" &&
	    mv -f "$LLMGATE_FAULT_DIR/clock.new" "$LLMGATE_FAULT_DIR/clock"
}

cost() {	# PROMPT COMPLETION IN OUT: micro-USD, rounded up once
	echo $(( ($1 * $3 + $2 * $4 + 999999) / 1000000 ))
}

worst() {	# BODY MAX_TOKENS IN OUT: the reservation (a token per body byte)
	cost "$(printf %s "$1" | wc -c)" "$2" "$3" "$4"
}

rows() {	# KEY: the key's usage rows, oldest first, one JSON object a line
	admin usage --rows --key "$1" --from $FROM --to $TO
}

row_time() {	# KEY [N]: the unix second of the key's Nth last usage row (1)
	rows "$1" | tail -n "${2:-1}" | head -n 1 | jx 'str(d["time_us"] // 1000000)'
}

minutes() {	# KEY: the minutes (unix seconds / 60) of the key's rows, in order
	rows "$1" | python3 -c 'import json, sys
print(" ".join(str(json.loads(l)["time_us"] // 60000000) for l in sys.stdin if l.strip()))'
}

usage_group() {	# KEY GROUP FIELD: a field of one row of usage --group-by model
	admin usage --json --group-by model --key "$1" --from $FROM --to $TO |
	    jx "([r for r in d['data'] if r['group'] == '$2'] or [{}])[0].get('$3')"
}

# window KEY MODEL N [TEXT [EXTRA]]: N requests in a row; RUN holds each
# one's status, x-ratelimit limit, remaining and reset (requests, or tokens
# when the key has no rpm); STATUS, BODY, HDRS are the last one's.
window() {
	local key=$1 model=$2 n=$3 i kind=requests
	RUN=()
	for ((i = 1; i <= n; i++)); do
		chat_as "$key" "$model" "${4:-hello}" "${5:-}"
		[ -n "$(hdr x-ratelimit-limit-requests)" ] || kind=tokens
		RUN+=("$STATUS $(hdr x-ratelimit-limit-$kind) $(hdr x-ratelimit-remaining-$kind) $(hdr x-ratelimit-reset-$kind)")
	done
}

# concurrent KEY N: N requests of KEY at once, each answered after 1 s
# (a process each under mod_fcgid while it lasts); prints the statuses,
# sorted.
concurrent() {
	local i pids=()
	for ((i = 1; i <= $2; i++)); do
		curl -sS --max-time 60 -o /dev/null -w '%{http_code}\n' \
		    -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
		    --data-binary "$(chat_json mock-a 'slow MOCK{first_byte_delay=1}' '"max_tokens":5')" \
		    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/concurrent.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	cat "$TMPDIR_T"/concurrent.* | sort | tr '\n' ' ' | sed 's/ $//'
	rm -f "$TMPDIR_T"/concurrent.*
}

# spend KEY: requests of 138 micro-USD until one is refused (at most 30);
# OKS is how many passed.
spend() {
	local i
	OKS=0
	for ((i = 1; i <= 30; i++)); do
		chat_as "$1" mock-a hello '"max_tokens":5'
		[ "$STATUS" = 200 ] || return 0
		OKS=$((OKS + 1))
	done
}

scenarios() {
	local k=$SERVER_KIND rk ck rm K tk tt tok lim i t ra m w expect spent kb mb

	# --- Per key (--rpm 3): a minute from its second 1 ------------------------
	create_key rk --name "rk-$k" --rpm 3
	clock_at $((W + 1))
	window "$rk" mock-a 4 hello '"max_tokens":5'
	for i in 1 2 3; do
		t=$(row_time "rk-$k" $((5 - i)))
		is "${RUN[i - 1]}" "200 3 $((3 - i)) $((60 - t % 60))s" \
		    "$k: rpm: request $i passes, $((3 - i)) remaining, reset at the next minute"
	done
	is "$STATUS" 429 "$k: rpm: the fourth request in the minute -> 429"
	is "$(jx 'd["error"]["type"]' <<<"$BODY")" rate_limit_error "$k: rpm: type rate_limit_error"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" rate_limit_exceeded "$k: rpm: code rate_limit_exceeded"
	ra=$(hdr Retry-After)
	t=$(row_time "rk-$k")
	is "$ra" $((60 - t % 60)) "$k: rpm: Retry-After is the seconds from the refusal (second $((t % 60))) to the next minute"
	ok "$k: rpm: the run began at second 1 (Retry-After $ra <= 59)" test "${ra:-60}" -le 59
	is "$(minutes "rk-$k")" "$((W / 60)) $((W / 60)) $((W / 60)) $((W / 60))" \
	    "$k: rpm: the four requests were stamped in one minute"
	is "$(hdr x-ratelimit-limit-requests)" 3 "$k: rpm: x-ratelimit-limit-requests 3"
	is "$(hdr x-ratelimit-remaining-requests)" 0 "$k: rpm: x-ratelimit-remaining-requests 0"
	is "$(hdr x-ratelimit-reset-requests)" "${ra}s" "$k: rpm: x-ratelimit-reset-requests ${ra}s"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" "Retry in ${ra}s" "$k: rpm: the message says when"
	is "$(usage_group "rk-$k" mock-a requests) $(usage_group "rk-$k" mock-a errors) $(usage_group "rk-$k" mock-a cost_micro_usd)" \
	    "4 1 $((3 * SMALL))" "$k: rpm: the refused request is recorded as an error at no cost"
	is "$(rows "rk-$k" | tail -n 1 | jx '[d["status"], d["cost_micro_usd"]]')" '[429, 0]' \
	    "$k: rpm: its row: status 429, cost 0"
	chat_as "$LLMGATE_MASTER_KEY" mock-a hello
	is "$STATUS $(hdr x-ratelimit-limit-requests)" "200 " "$k: rpm: the master key is not limited"

	# The next minute: a fresh window, the same limit.
	clock_at $((W + 61))
	window "$rk" mock-a 4 hello '"max_tokens":5'
	for i in 1 2 3; do
		t=$(row_time "rk-$k" $((5 - i)))
		is "${RUN[i - 1]}" "200 3 $((3 - i)) $((60 - t % 60))s" \
		    "$k: rpm: next minute: request $i passes, $((3 - i)) remaining"
	done
	t=$(row_time "rk-$k")
	is "$STATUS $(hdr Retry-After)" "429 $((60 - t % 60))" "$k: rpm: next minute: the fourth -> 429 again"
	is "$(minutes "rk-$k" | cut -d' ' -f5-)" "$((W / 60 + 1)) $((W / 60 + 1)) $((W / 60 + 1)) $((W / 60 + 1))" \
	    "$k: rpm: those four in the next minute"

	# --- One window, requests at once (several processes under mod_fcgid) -----
	# mod_fcgid starts processes a few at a time: the master key's slow
	# requests (no window) start them first.
	[ "$k" != apache ] || concurrent "$LLMGATE_MASTER_KEY" 6 >/dev/null
	create_key ck --name "ck-$k" --rpm 3
	clock_at $((W + 121))
	is "$(concurrent "$ck" 6)" "200 200 200 429 429 429" "$k: rpm: six at once in one minute: three pass"
	clock_at $((W + 181))
	is "$(concurrent "$ck" 6)" "200 200 200 429 429 429" "$k: rpm: six at once in the next: three again"
	if [ "$k" = apache ]; then
		m=$(gw_worker_pids | wc -l)
		ok "$k: $m mod_fcgid processes served them (the window is the store's)" test "$m" -ge 2
	fi

	# --- Per model (rpm = 3 on rpm-KIND, all keys together) -------------------
	create_key rm --name "rm-$k"
	clock_at $((W + 1))
	window "$rm" "rpm-$k" 4
	for i in 1 2 3; do
		is "${RUN[i - 1]%% *}" 200 "$k: model rpm: request $i on rpm-$k passes"
	done
	is "$STATUS" 429 "$k: model rpm: the fourth request on the model -> 429"
	is "$(jx 'd["error"]["code"]' <<<"$BODY")" rate_limit_exceeded "$k: model rpm: code rate_limit_exceeded"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" "rpm-$k" "$k: model rpm: the message names the model"
	t=$(row_time "rm-$k")
	is "$(hdr Retry-After)" $((60 - t % 60)) "$k: model rpm: Retry-After to the next minute"
	chat_as "$rm" mock-a hello '"max_tokens":5'
	is "$STATUS" 200 "$k: model rpm: the same key still uses another model"
	clock_at $((W + 61))
	chat_as "$rm" "rpm-$k" hello
	is "$STATUS" 200 "$k: model rpm: the next minute admits the model again"

	# --- Per model family: a snapshot shares its model's rpm (2) --------------
	create_key K --name "client-$k"
	clock_at $((W + 1))
	chat_as "$K" "mock-r-$k" hello
	is "$STATUS" 200 "$k: family rpm: mock-r-$k passes"
	chat_as "$K" "mock-r-$k-2024-05-13" hello
	is "$STATUS" 200 "$k: family rpm: then its snapshot"
	chat_as "$K" "mock-r-$k-2023-01-01" hello
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "429 rate_limit_exceeded" \
	    "$k: family rpm: the third request on the family -> 429"
	clock_at $((W + 61))
	chat_as "$K" "mock-r-$k-2023-01-01" hello
	is "$STATUS" 200 "$k: family rpm: the next minute admits it"

	# --- Tokens per minute per key ---------------------------------------------
	# Admission counts the bound (body bytes, plus max_tokens); settling
	# trues it up to the tokens used (15 here). With a limit of tok + 2.5
	# times 15, three requests pass and the fourth (3 x 15 + tok) is refused.
	tt='MOCK{prompt_tokens=10,completion_tokens=5}'
	tok=$(( $(chat_json mock-a "$tt" '"max_tokens":5' | wc -c) + 5 ))
	lim=$(( tok + 37 ))
	create_key tk --name "tk-$k" --tpm $lim
	clock_at $((W + 1))
	window "$tk" mock-a 4 "$tt" '"max_tokens":5'
	for i in 1 2 3; do
		t=$(row_time "tk-$k" $((5 - i)))
		is "${RUN[i - 1]}" "200 $lim $(( lim - (i - 1) * 15 - tok )) $((60 - t % 60))s" \
		    "$k: tpm: request $i passes (estimate $tok, then 15 used)"
	done
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "429 rate_limit_exceeded" "$k: tpm: the fourth -> 429"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" 'tokens per minute' "$k: tpm: the message says tokens"
	t=$(row_time "tk-$k")
	is "$(hdr x-ratelimit-remaining-tokens) $(hdr x-ratelimit-reset-tokens) $(hdr Retry-After)" \
	    "0 $((60 - t % 60))s $((60 - t % 60))" "$k: tpm: remaining 0, reset and Retry-After at the next minute"
	clock_at $((W + 61))
	window "$tk" mock-a 1 "$tt" '"max_tokens":5'
	t=$(row_time "tk-$k")
	is "${RUN[0]}" "200 $lim $((lim - tok)) $((60 - t % 60))s" "$k: tpm: the next minute counts from zero"

	# --- A key's daily budget across midnight UTC -----------------------------
	w=$(worst "$(chat_json mock-a hello '"max_tokens":5')" 5 $A_IN $A_OUT)
	expect=0
	for ((spent = 0; spent + w <= BUDGET; spent += SMALL)); do expect=$((expect + 1)); done
	create_key kb --name "kb-$k" --daily-budget 0.002
	clock_at $((MIDNIGHT - 600))
	spend "$kb"
	is "$OKS" "$expect" "$k: day: $expect requests of $SMALL (worst case $w) fit $BUDGET"
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "429 budget_exceeded" "$k: day: then 429 budget_exceeded"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" 'Daily budget of this key' "$k: day: the message says which budget"
	ra=$(hdr Retry-After)
	t=$(row_time "kb-$k")
	is "$ra" $((MIDNIGHT - t)) "$k: day: Retry-After is the seconds to midnight UTC (refused at $(date -u -d "@$t" +%T))"
	ok "$k: day: the refusal came in the 10 minutes before midnight ($ra s)" test "${ra:-0}" -ge 1 -a "${ra:-0}" -le 600
	api "$kb" GET /usage
	is "$(jx '[d["budgets"]["key_daily_micro_usd"], d["budgets"]["key_spent_today_micro_usd"], d["today"]["cost_micro_usd"]]' <<<"$BODY")" \
	    "[$BUDGET, $((SMALL * OKS)), $((SMALL * OKS))]" "$k: day: /usage: the day's spend is the budget's"
	clock_at $((MIDNIGHT + 5))
	chat_as "$kb" mock-a hello '"max_tokens":5'
	is "$STATUS" 200 "$k: day: past midnight the key is admitted again"
	api "$kb" GET /usage
	is "$(jx '[d["budgets"]["key_spent_today_micro_usd"], d["today"]["requests"], d["today"]["cost_micro_usd"]]' <<<"$BODY")" \
	    "[$SMALL, 1, $SMALL]" "$k: day: /usage: today's spend restarted"
	is "$(jx 'd["budgets"]["spent_month_micro_usd"]' <<<"$BODY")" $((SMALL * (OKS + 1))) \
	    "$k: day: /usage: the month's spend goes on"

	# --- A key's monthly budget across the end of the month ----------------------
	create_key mb --name "mb-$k" --monthly-budget 0.002
	clock_at $((MONTH_END - 600))
	spend "$mb"
	is "$OKS" "$expect" "$k: month: $expect requests fit $BUDGET"
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "429 budget_exceeded" "$k: month: then 429 budget_exceeded"
	like "$(jx 'd["error"]["message"]' <<<"$BODY")" 'Monthly budget of this key' "$k: month: the message says which budget"
	t=$(row_time "mb-$k")
	is "$(hdr Retry-After)" $((MONTH_END - t)) "$k: month: Retry-After is the seconds to the next month"
	api "$mb" GET /usage
	is "$(jx '[d["budgets"]["monthly_micro_usd"], d["budgets"]["spent_month_micro_usd"]]' <<<"$BODY")" \
	    "[$BUDGET, $((SMALL * OKS))]" "$k: month: /usage: the month's spend is the budget's"
	clock_at $((MONTH_END + 5))
	chat_as "$mb" mock-a hello '"max_tokens":5'
	is "$STATUS" 200 "$k: month: in the next month the key is admitted again"
	api "$mb" GET /usage
	is "$(jx '[d["budgets"]["spent_month_micro_usd"], d["budgets"]["key_spent_today_micro_usd"], d["month"]["requests"]]' <<<"$BODY")" \
	    "[$SMALL, $SMALL, 1]" "$k: month: /usage: the month's spend restarted"
	rm -f "$LLMGATE_FAULT_DIR/clock"
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-lighttpd apache} for_each_server "$CONF" scenarios

out=$(admin check --json)
is "$?" 0 "llmgate-admin check exits 0"
is "$(jx 'd["problems"]' <<<"$out")" '[]' "check: no problems"

done_testing
