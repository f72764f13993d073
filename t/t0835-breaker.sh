#!/bin/bash
# t0835-breaker.sh: circuit breakers shared by every gateway process. A
# provider hangs before the first byte under concurrent load: its breaker
# opens after breaker_failures failed attempts (from different processes
# under mod_fcgid), retries stop at once, and while it is open no request
# reaches the hung upstream (the mock's own log): requests for a model with
# a fallback are served by the fallback in one attempt (usage rows,
# X-Llmgate-Attempts) in well under a second (curl's time_total), and a
# model with no other deployment gets 503 circuit_open with Retry-After.
# Once the upstream recovers and breaker_open_s has passed, the breaker
# goes half-open, probes succeed and it closes (GET /health/circuit-breakers).
# The health routes and llmgate-admin breaker list|reset are checked too.
# Under Apache mod_fcgid (many one-request processes) and lighttpd.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0835
export LLMGATE_MASTER_KEY=sk-master-t0835-key
CONF=$TMPDIR_T/llmgate.ini
OPEN_S=8	# breaker_open_s: long enough for the checks to run inside it
N=12		# concurrent requests while the upstream hangs
FAILS=3		# breaker_failures

cat >"$CONF" <<EOF
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY
breaker_failures = $FAILS
breaker_failure_rate = 0
breaker_open_s = $OPEN_S
breaker_successes = 2
breaker_probes = 1

[retry]
attempts = 2
backoff_ms = 50

[provider hung]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
first_byte_timeout = 2

[provider mock]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
match = mock*

[provider off]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
first_byte_timeout = 1
breaker = off

[model slow]
provider = hung
upstream = slow-up
fallback = fast
input_price = 1
output_price = 2

[model lonely]
provider = hung
upstream = slow-up
input_price = 1
output_price = 2

[model fast]
provider = mock
upstream = fast-up
input_price = 1
output_price = 2

[model emb-down]
provider = hung
upstream = emb-up@status=503
fallback = emb-ok
input_price = 0.02

[model emb-lonely]
provider = hung
upstream = emb-up@status=503
input_price = 0.02

[model emb-ok]
provider = mock
upstream = emb-ok
input_price = 0.02

[model unguarded]
provider = off
upstream = off-up
fallback = fast
input_price = 1
output_price = 2
EOF

faults() { curl -sS -X POST --data-binary "$1" "$MOCK_URL/_mock/faults" >/dev/null; }
breakers() { gw_curl "$GW_URL/health/circuit-breakers"; }
# The hung deployment's entry: a Python expression over it (b), or "none".
slow_breaker() {	# EXPR [LISTING]: from LISTING, else a fresh one
	if [ $# -gt 1 ]; then printf '%s' "$2"; else breakers; fi |
	    jx 'next(('"$1"' for b in d["data"] if b["deployment"] == "hung/slow-up"), "none")'
}
# Mock requests for upstream model M with log time in [FROM, TO).
mock_hits() {	# M FROM TO
	mock_log | jx "len([e for e in d['log'] if e['model'] == '$1' and $2 <= e['t'] < $3])"
}

# fire TAG COUNT MODEL: COUNT concurrent chat requests; for request i,
# $TMPDIR_T/TAG.i holds "status time_total" and TAG.i.h its headers.
fire() {
	local tag=$1 n=$2 model=$3 i pids=()
	for ((i = 0; i < n; i++)); do
		curl -sS --max-time 60 -o "$TMPDIR_T/$tag.$i.body" -D "$TMPDIR_T/$tag.$i.h" \
		    -w '%{http_code} %{time_total}' -H "Authorization: Bearer $LLMGATE_MASTER_KEY" \
		    -H 'Content-Type: application/json' --data-binary "$(chat_json "$model" "req $tag $i")" \
		    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/$tag.$i" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
}
# summary TAG COUNT HEADER: the sorted distinct "status header-value" pairs.
summary() {
	local i
	for ((i = 0; i < $2; i++)); do
		HDRS=$TMPDIR_T/$1.$i.h
		echo "$(cut -d' ' -f1 "$TMPDIR_T/$1.$i") $(hdr "$3")"
	done | sort | uniq -c | awk '{ printf "%s%s*%s %s", sep, $1, $2, $3; sep = ", " }'
}
slowest() {	# TAG COUNT: the largest time_total
	local i
	for ((i = 0; i < $2; i++)); do cut -d' ' -f2 "$TMPDIR_T/$1.$i"; done | sort -g | tail -n 1
}

scenario() {
	local k=$SERVER_KIND t0 t1 t2 t3 t4 next trips trips0 hits out rid i ra procs snap snap2 lonely

	faults '{}'
	admin breaker reset >/dev/null
	mock_clear
	# trips count for ever (a reset closes, it does not forget).
	trips0=$(slow_breaker 'b["trips"]')
	[ "$trips0" != none ] || trips0=0

	# Access: the routes name providers and errors: master key only.
	api "" GET /health/circuit-breakers
	is "$STATUS" 401 "$k: /health/circuit-breakers without a key: 401"
	api sk-not-the-master-key-000000000000000000000000000000000 GET /health/detailed
	ok "$k: /health/detailed with another key: refused ($STATUS)" test "$STATUS" = 401 -o "$STATUS" = 403
	api "$LLMGATE_MASTER_KEY" GET /health/detailed
	is "$STATUS $(jx 'd["status"]' <<<"$BODY")" "200 ok" "$k: /health/detailed with the master key"
	api "" GET /health
	is "$STATUS" 200 "$k: /health stays open"

	# 1. The upstream hangs before its first byte; N requests at once.
	# What must happen inside the open period is sent first (one listing
	# between), and judged afterwards.
	faults '{"slow-up": "first_byte_delay=60", "off-up": "first_byte_delay=60"}'
	t0=$EPOCHREALTIME
	fire hang "$N" slow
	t1=$EPOCHREALTIME
	snap=$(breakers)
	# 2. While open: nothing reaches the hung upstream; one attempt, fast.
	t2=$EPOCHREALTIME
	fire open "$N" slow
	t3=$EPOCHREALTIME
	api "$LLMGATE_MASTER_KEY" POST /v1/chat/completions "$(chat_json lonely hi)"
	cp "$HDRS" "$TMPDIR_T/lonely.h"
	lonely="$STATUS $(hdr Retry-After) $BODY"
	# A stream, while open: the fallback streams it, in one attempt.
	out=$(gw_curl -N -D "$TMPDIR_T/stream.h" -H 'Content-Type: application/json' --data-binary \
	    '{"model":"slow","stream":true,"messages":[{"role":"user","content":"stream while open"}]}' \
	    "$GW_URL/v1/chat/completions")
	snap2=$(breakers)
	t4=$EPOCHREALTIME

	is "$(summary hang "$N" X-Llmgate-Model)" "$N*200 fast" \
	    "$k: all $N requests for slow answered 200 by the fallback fast"
	is "$(slow_breaker 'b["state"]' "$snap")" open "$k: the hung deployment's breaker is open"
	is "$(slow_breaker 'b["trips"]' "$snap")" $((trips0 + 1)) "$k: it opened once"
	like "$(slow_breaker 'b["last_error"]["message"]' "$snap")" 'timeout' "$k: its last error says timeout"
	unlike "$snap" "$MOCK_API_KEY|$LLMGATE_MASTER_KEY" "$k: no key in the listing"
	hits=$(mock_hits slow-up "$t0" "$t1")
	ok "$k: the hung upstream saw $hits requests: at most one each plus the $((FAILS - 1)) retries before the breaker opened" \
	    test "$hits" -ge "$FAILS" -a "$hits" -le $((N + FAILS - 1))
	if [ "$k" = apache ]; then
		procs=$(gw_worker_pids | wc -l)
		ok "$k: $procs mod_fcgid processes served the load (the state is shared)" test "$procs" -ge 2
	fi

	next=$(slow_breaker 'b["next_probe_at"]' "$snap")
	trips=$(slow_breaker 'b["trips"]' "$snap")
	is "$(summary open "$N" X-Llmgate-Model)" "$N*200 fast" \
	    "$k: while open, all $N requests served by fast"
	is "$(mock_hits slow-up "$t2" "$next")" 0 \
	    "$k: no request reached the hung upstream before the next probe time"
	read -r STATUS ra BODY <<<"$lonely"
	if python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))' "$t4" "$next"; then
		is "$(slow_breaker 'b["trips"]' "$snap2")" "$trips" "$k: all of it inside one open period"
		is "$(summary open "$N" X-Llmgate-Attempts)" "$N*200 1" \
		    "$k: each in one attempt (X-Llmgate-Attempts: 1)"
		ok "$k: the slowest took $(slowest open "$N") s by curl (< 1 s: no timeout spent)" \
		    python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < 1.0)' "$(slowest open "$N")"
		HDRS=$TMPDIR_T/open.0.h
		rid=$(hdr X-Request-Id)
		is "$(admin usage --rows | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if r["request_id"] == sys.argv[1]:
        print(r["attempts"], r["served"], r["status"])' "$rid")" "1 fast 200" \
		    "$k: its usage row: one attempt, served by fast"
		is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "503 circuit_open" \
		    "$k: a model with no other deployment: 503 circuit_open"
		ok "$k: with Retry-After $ra (1..$OPEN_S s to the next probe)" test "${ra:-0}" -ge 1 -a "${ra:-0}" -le "$OPEN_S"
		is "$(jx 'd["error"]["type"]' <<<"$BODY")" upstream_error "$k: an OpenAI-shaped error"
		like "$out" 'data: \[DONE\]' "$k: a stream while open completes"
		HDRS=$TMPDIR_T/stream.h
		is "$(hdr X-Llmgate-Model) $(hdr X-Llmgate-Attempts)" "fast 1" "$k: served by fast in one attempt"
	else
		fail "$k: the open period ($OPEN_S s) ended before its requests were sent: the machine is too slow for this test" \
		    "next probe at $next, done at $t4"
	fi
	# The admin tool sees the same state (open, or half-open by now).
	out=$(admin breaker list)
	like "$out" 'hung/slow-up +(open|half_open) +[0-9]+ +'"$trips"' ' "$k: llmgate-admin breaker list: hung/slow-up, $trips trip(s)"
	like "$(admin breaker list --json | jx '[b["state"] for b in d["data"] if b["deployment"] == "hung/slow-up"]')" \
	    '^\["(open|half_open)"\]$' "$k: breaker list --json"

	# A provider with breaker = off is tried every time.
	t0=$EPOCHREALTIME
	fire unguarded 4 unguarded
	t1=$EPOCHREALTIME
	is "$(summary unguarded 4 X-Llmgate-Model)" "4*200 fast" "$k: breaker = off: served by the fallback"
	hits=$(mock_hits off-up "$t0" "$t1")
	ok "$k: breaker = off: its upstream was tried by every request ($hits >= 4)" test "$hits" -ge 4
	is "$(breakers | jx 'len([b for b in d["data"] if b["provider"] == "off"])')" 0 \
	    "$k: breaker = off: no breaker tracked for it"


	# 3. The upstream recovers; after open_s the breaker probes and closes.
	faults '{}'
	slow_is() { [ "$(slow_breaker 'b["state"]')" = "$1" ]; }
	ok "$k: after open_s: half-open" wait_until $((OPEN_S * 4)) slow_is half_open
	for i in 1 2 3 4 5 6; do
		chat_as "$LLMGATE_MASTER_KEY" slow "probe $i"
		[ "$(slow_breaker 'b["state"]')" != closed ] || break
	done
	is "$(slow_breaker 'b["state"]')" closed "$k: the probes succeeded: closed (after $i requests)"
	is "$STATUS $(hdr X-Llmgate-Model) $(hdr X-Llmgate-Attempts)" "200 slow 1" \
	    "$k: the last probe was served by slow itself"
	is "$(slow_breaker 'b["consecutive_failures"]')" 0 "$k: no failures counted since"
	fire closed 4 slow
	is "$(summary closed 4 X-Llmgate-Model)" "4*200 slow" "$k: closed: requests go to slow again"

	# reset: an open breaker closed by hand.
	faults '{"slow-up": "status=503"}'
	for i in 1 2 3; do chat_as "$LLMGATE_MASTER_KEY" lonely "fail $i"; done
	is "$(slow_breaker 'b["state"]')" open "$k: 503s open it again"
	out=$(admin breaker reset hung/slow-up)
	is "$?" 0 "$k: llmgate-admin breaker reset hung/slow-up"
	like "$out" 'reset 1 breaker' "$k: reset says 1"
	is "$(slow_breaker 'b["state"]')" closed "$k: closed by the reset"
	faults '{}'

	# Embeddings (the other call loop): 503s open the breaker, then the
	# fallback answers in one attempt and the upstream is left alone.
	emb() {	# MODEL: POST /v1/embeddings; sets STATUS, BODY, HDRS
		api "$LLMGATE_MASTER_KEY" POST /v1/embeddings "{\"model\":\"$1\",\"input\":\"hi\"}"
	}
	admin breaker reset >/dev/null
	emb emb-down
	emb emb-down
	is "$STATUS $(hdr X-Llmgate-Model)" "200 emb-ok" "$k: embeddings: emb-down falls back to emb-ok"
	is "$(breakers | jx 'next((b["state"] for b in d["data"] if b["deployment"] == "hung/emb-up@status=503"), "none")')" \
	    open "$k: embeddings: $FAILS failed attempts opened its breaker"
	t0=$EPOCHREALTIME
	emb emb-down
	is "$STATUS $(hdr X-Llmgate-Model) $(hdr X-Llmgate-Attempts)" "200 emb-ok 1" \
	    "$k: embeddings while open: the fallback in one attempt"
	emb emb-lonely
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "503 circuit_open" \
	    "$k: embeddings with no other deployment: 503 circuit_open"
	ok "$k: with Retry-After $(hdr Retry-After)" test "$(hdr Retry-After)" -ge 1
	is "$(mock_hits emb-up@status=503 "$t0" "$EPOCHREALTIME")" 0 \
	    "$k: embeddings while open: nothing sent to the failing upstream"
	admin breaker reset hung >/dev/null
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-apache lighttpd} for_each_server "$CONF" scenario

# A region file of another layout (an older build) is rebuilt.
as_gw_user sh -c 'printf "not a breaker region" >"$1"' sh "$TMPDIR_T/data/breakers"
out=$(admin breaker list 2>&1)
is "$?" 0 "a breakers file of another layout: list still works"
ok "it was rebuilt to the right size" test "$(stat -c %s "$TMPDIR_T/data/breakers")" -gt 4096

done_testing
