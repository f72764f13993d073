#!/bin/bash
# t0920-response-cache.sh: the exact response cache ([model] cache_ttl),
# under every front end, proven by the mock's request count (a hit makes
# no upstream call): a miss then a hit with the same answer; two keys never
# read each other's answers (cache_scope = key) and do under
# cache_scope = global; requests without temperature 0 are not cached
# unless X-Llmgate-Cache: on; Cache-Control no-store (bypass) and no-cache
# (answered fresh, then stored); n > 1 bypasses; an agent with cache = off
# bypasses; a streamed answer is stored and replayed as SSE (content,
# finish, the usage chunk when asked, [DONE]) and serves a non-streamed
# request too, and a non-streamed one replays as a stream; the usage rows
# carry cache_hit and cost cache_hit_price per 1M tokens of the original
# usage; two identical requests at once are both answered (no single-flight).
# Once (store, not front end): a redacting policy keys the cache on the
# redacted request and restores each request's own values into a hit;
# expiry on the fault build's clock; eviction at response_cache_max_mb;
# concurrent stores with gateway processes SIGKILLed leave a store that
# `llmgate-admin check` passes and that serves on; valgrind on a CGI miss
# and hit.
. "$(dirname "$0")/lib.sh"

FAULT_BIN=${LLMGATE_FAULT:-$top_builddir/t/llmgate-fault}
[ -x "$FAULT_BIN" ] || bail "$FAULT_BIN is missing: make t/llmgate-fault (make check builds it)"

setup_tmp
use_binary_copies
cp "$FAULT_BIN" "$TMPDIR_T/bin/llmgate" || bail "cannot copy $FAULT_BIN"
chmod 0755 "$TMPDIR_T/bin/llmgate"
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0920
export LLMGATE_MASTER_KEY=sk-master-t0920-key
export LLMGATE_FAULT_DIR=$TMPDIR_T/faults
GW_PASSENV=LLMGATE_FAULT_DIR
mkdir -p "$LLMGATE_FAULT_DIR"
chown "$GW_USER:$GW_GROUP" "$LLMGATE_FAULT_DIR"
CONF=$TMPDIR_T/llmgate.ini

write_mock_gateway "$CONF" "response_cache_max_mb = 1" "default_tier = T1"
cat >>"$CONF" <<EOF
[model mock-c]
provider = mock
upstream = mock-c-up
input_price = 10
output_price = 20
cache_ttl = 600
cache_hit_price = 1

[model mock-g]
provider = mock
upstream = mock-g-up
cache_ttl = 600
cache_scope = global

[model mock-n]
provider = mock
upstream = mock-n-up

; Fails, then falls back to mock-c: an answer of a fallback is not stored.
[model mock-f]
provider = mock
upstream = mock-f-up@status=503
cache_ttl = 600
fallback = mock-c

[tier T1]
rpm = 0

[agent nocache]
cache = off

[policy redactall]
pii = redact
ip = off
EOF

create_key KA --name ka
create_key KB --name kb
create_key KN --name kn --agent nocache
create_key KR --name kr --policy redactall

# req KEY BODY [CURL-ARGS...]: POST /v1/chat/completions; sets STATUS,
# BODY, HDRS as api does.
req() {
	local key=$1 body=$2
	shift 2
	HDRS=$TMPDIR_T/api.headers
	BODY=$(curl -sS --max-time 60 -o - -w '\n%{http_code}' -D "$HDRS" \
	    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
	    "$@" --data-binary "$body" "$GW_URL/v1/chat/completions")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
body() {	# MODEL TEXT [EXTRA-MEMBERS]: a chat body at temperature 0
	chat_json "$1" "$2" "\"temperature\":0${3:+,$3}"
}
ups() {		# UPSTREAM-MODEL: the mock's request count for it
	mock_log | jx "d['requests'].get('$1', 0)"
}
content() { jx 'd["choices"][0]["message"]["content"]' <<<"$BODY"; }
cache_hdr() { hdr x-llmgate-cache; }
rows() { admin usage --rows --key "$1" --from 2000-01-01 --to 2100-01-01; }
up() {	# the front end serves again after a gateway process died (lighttpd
	# refuses for a second while it restarts its backend)
	wait_until 30 test "$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/health")" = 200
}
row_of() {	# KEY-NAME REQUEST-ID: that request's usage row, once settled
		# (after the answer was sent)
	wait_until 20 grep -q "\"$2\"" <(rows "$1")
	rows "$1" | grep "\"$2\""
}

scenario() {
	local S=$SERVER_KIND n0 n1 c1 out i bg=()
	# A miss, then a hit: same answer, no upstream call.
	n0=$(ups mock-c-up)
	req "$KA" "$(body mock-c "one $S MOCK{chunks=4}")"
	is "$STATUS $(cache_hdr)" "200 miss" "$S: first request: 200, X-Llmgate-Cache: miss"
	c1=$(content)
	is "$(ups mock-c-up)" $((n0 + 1)) "$S: ... went upstream"
	req "$KA" "$(body mock-c "one $S MOCK{chunks=4}")"
	is "$STATUS $(cache_hdr)" "200 hit" "$S: the same again: X-Llmgate-Cache: hit"
	is "$(content)" "$c1" "$S: ... the same answer"
	is "$(ups mock-c-up)" $((n0 + 1)) "$S: ... no upstream call"
	is "$(hdr x-llmgate-model)" mock-c "$S: ... X-Llmgate-Model names the model"
	# Field order and 0.0 for 0 do not change the key; a parameter does.
	req "$KA" "{\"temperature\":0.0,\"messages\":[{\"content\":\"one $S MOCK{chunks=4}\",\"role\":\"user\"}],\"model\":\"mock-c\"}"
	is "$(cache_hdr)" hit "$S: members reordered, temperature 0.0: still a hit"
	req "$KA" "$(body mock-c "one $S MOCK{chunks=4}" '"max_tokens":7')"
	is "$(cache_hdr) $(ups mock-c-up)" "miss $((n0 + 2))" "$S: max_tokens added: a miss, upstream"

	# The usage rows: a hit billed at cache_hit_price (1 USD per 1M tokens
	# of the original usage: a micro-dollar a token), the miss at the model's.
	req "$KA" "$(body mock-c "one $S MOCK{chunks=4}")"
	out=$(row_of ka "$(hdr x-request-id)")
	is "$(jx '[d["cache_hit"], d["cost_micro_usd"] == d["prompt_tokens"] + d["completion_tokens"], d["prompt_tokens"] > 0]' <<<"$out")" \
	    "[true, true, true]" "$S: a hit's row: cache_hit, cost = tokens x cache_hit_price"

	# Scope: another key never reads ka's answer; a global model shares.
	req "$KB" "$(body mock-c "one $S MOCK{chunks=4}")"
	is "$(cache_hdr) $(ups mock-c-up)" "miss $((n0 + 3))" "$S: key kb, same request: a miss (scope = key)"
	out=$(row_of kb "$(hdr x-request-id)")
	is "$(jx '[d["cache_hit"], d["cost_micro_usd"] > 0]' <<<"$out")" "[false, true]" \
	    "$S: ... its row: no cache_hit, priced by the model"
	n0=$(ups mock-g-up)
	req "$KA" "$(body mock-g "glob $S")"
	req "$KB" "$(body mock-g "glob $S")"
	is "$(cache_hdr) $(ups mock-g-up)" "hit $((n0 + 1))" "$S: cache_scope = global: kb hits ka's answer"

	# Not deterministic: bypassed, unless asked for.
	n0=$(ups mock-c-up)
	req "$KA" "$(chat_json mock-c "warm $S")"
	req "$KA" "$(chat_json mock-c "warm $S")"
	is "$(cache_hdr) $(ups mock-c-up)" "bypass $((n0 + 2))" "$S: no temperature: bypass, both upstream"
	req "$KA" "$(chat_json mock-c "warm $S" '"temperature":0.7')" -H 'X-Llmgate-Cache: on'
	req "$KA" "$(chat_json mock-c "warm $S" '"temperature":0.7')" -H 'X-Llmgate-Cache: on'
	is "$(cache_hdr) $(ups mock-c-up)" "hit $((n0 + 3))" "$S: temperature 0.7 with X-Llmgate-Cache: on: cached"
	req "$KA" "$(body mock-c "two $S" '"n":2')"
	req "$KA" "$(body mock-c "two $S" '"n":2')"
	is "$(cache_hdr) $(ups mock-c-up)" "bypass $((n0 + 5))" "$S: n = 2: bypass"
	req "$KN" "$(body mock-c "agent $S")"
	req "$KN" "$(body mock-c "agent $S")"
	is "$(cache_hdr) $(ups mock-c-up)" "bypass $((n0 + 7))" "$S: [agent] cache = off: bypass"
	req "$KA" "$(body mock-n "plain $S")"
	is "$STATUS $(cache_hdr)" "200 " "$S: a model without cache_ttl: no X-Llmgate-Cache"

	# Cache-Control.
	n0=$(ups mock-c-up)
	req "$KA" "$(body mock-c "one $S MOCK{chunks=4}")" -H 'Cache-Control: no-store'
	is "$(cache_hdr) $(ups mock-c-up)" "bypass $((n0 + 1))" "$S: Cache-Control: no-store: bypass, upstream"
	req "$KA" "$(body mock-c "fresh $S")" -H 'Cache-Control: max-age=0, no-cache'
	is "$(cache_hdr) $(ups mock-c-up)" "miss $((n0 + 2))" "$S: Cache-Control: no-cache: not read (miss, upstream)"
	req "$KA" "$(body mock-c "fresh $S")"
	is "$(cache_hdr) $(ups mock-c-up)" "hit $((n0 + 2))" "$S: ... but stored: the next one hits"

	# Streams: stored assembled, replayed as SSE.
	n0=$(ups mock-c-up)
	gw_sse -H "Authorization: Bearer $KA" -D "$TMPDIR_T/sse.h" \
	    -d "$(body mock-c "flow $S MOCK{chunks=5}" '"stream":true,"stream_options":{"include_usage":true}')" \
	    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/s1" 2>&1
	gw_sse -H "Authorization: Bearer $KA" -D "$TMPDIR_T/sse.h" \
	    -d "$(body mock-c "flow $S MOCK{chunks=5}" '"stream":true,"stream_options":{"include_usage":true}')" \
	    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/s2" 2>&1
	is "$(ups mock-c-up)" $((n0 + 1)) "$S: a stream twice: one upstream call"
	like "$(tr -d '\r' <"$TMPDIR_T/sse.h")" $'x-llmgate-cache: hit|X-Llmgate-Cache: hit' "$S: ... the second: X-Llmgate-Cache: hit"
	sse_sum() {
		python3 -c '
import json, sys
text, fin, usage, done = "", None, None, False
for line in open(sys.argv[1]):
    t, _, ev = line.rstrip("\n").partition(" ")
    if not ev.startswith("data: "):
        continue
    ev = ev[6:]
    if ev == "[DONE]":
        done = True
        continue
    o = json.loads(ev)
    for c in o.get("choices", []):
        text += c.get("delta", {}).get("content") or ""
        fin = c.get("finish_reason") or fin
    usage = o.get("usage") or usage
print(json.dumps([text, fin, usage and usage["completion_tokens"] > 0, done]))' "$1"
	}
	out=$(sse_sum "$TMPDIR_T/s1")
	is "$(sse_sum "$TMPDIR_T/s2")" "$out" "$S: ... replayed: the same text, finish, usage chunk, [DONE]"
	like "$out" '^\["tok0 tok1 tok2 tok3 tok4 ", "stop", true, true\]' "$S: ... which is the whole answer"
	req "$KA" "$(body mock-c "flow $S MOCK{chunks=5}")"
	is "$(cache_hdr) $(content) $(ups mock-c-up)" "hit tok0 tok1 tok2 tok3 tok4  $((n0 + 1))" \
	    "$S: the streamed answer serves a non-streamed request"
	gw_sse -H "Authorization: Bearer $KA" -D "$TMPDIR_T/sse3.h" \
	    -d "$(body mock-c "one $S MOCK{chunks=4}" '"stream":true')" \
	    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/s3" 2>&1
	is "$(sse_sum "$TMPDIR_T/s3")" "[\"$c1\", \"stop\", null, true]" \
	    "$S: a non-streamed answer replays as a stream (no usage chunk unasked)"
	is "$(ups mock-c-up)" $((n0 + 1)) "$S: ... no upstream call"
	out=$(row_of ka "$(HDRS=$TMPDIR_T/sse3.h hdr x-request-id)")
	is "$(jx '[d["cache_hit"], d["stream"]]' <<<"$out")" "[true, true]" "$S: ... its row: cache_hit, stream"

	# Two identical requests at once: both answered; no single-flight
	# (each may go upstream; the later store overwrites).
	n0=$(ups mock-c-up)
	for i in 1 2; do
		curl -sS --max-time 60 -H "Authorization: Bearer $KA" -H 'Content-Type: application/json' \
		    --data-binary "$(body mock-c "twin $S MOCK{first_byte_delay=0.5}")" \
		    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/twin.$i" &
		bg+=($!)
	done
	wait "${bg[@]}"
	is "$(jx 'd["choices"][0]["message"]["content"]' <"$TMPDIR_T/twin.1")|$(jx 'd["choices"][0]["message"]["content"]' <"$TMPDIR_T/twin.2")" \
	    "tok0 tok1 tok2 |tok0 tok1 tok2 " "$S: two identical requests at once: both answered"
	n1=$(ups mock-c-up)
	diag "$S: of the two at once, $((n1 - n0)) went upstream"
	req "$KA" "$(body mock-c "twin $S MOCK{first_byte_delay=0.5}")"
	is "$(cache_hdr) $(ups mock-c-up)" "hit $n1" "$S: ... then a hit"

	on_first_server || return 0
	once
}

# req_at PATH KEY BODY: req to another route.
req_at() {
	HDRS=$TMPDIR_T/api.headers
	BODY=$(curl -sS --max-time 60 -o - -w '\n%{http_code}' -D "$HDRS" \
	    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
	    --data-binary "$3" "$GW_URL$1")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}

# Other clients' routes share the pipeline: a hit answers in their shape.
other_clients() {
	local n0 b out
	n0=$(ups mock-c-up)
	b='{"model":"mock-c","max_tokens":50,"temperature":0,"messages":[{"role":"user","content":"anth MOCK{chunks=2}"}]}'
	req_at /v1/messages "$KA" "$b"
	is "$STATUS $(cache_hdr) $(ups mock-c-up)" "200 miss $((n0 + 1))" "/v1/messages: a miss, upstream"
	req_at /v1/messages "$KA" "$b"
	is "$STATUS $(cache_hdr) $(ups mock-c-up)" "200 hit $((n0 + 1))" "/v1/messages again: a hit, no upstream call"
	is "$(jx '[d["type"], d["content"][0]["text"], d["stop_reason"]]' <<<"$BODY")" \
	    '["message", "tok0 tok1 ", "end_turn"]' "... answered as an Anthropic message"
	out=$(curl -sS -N --max-time 30 -H "x-api-key: $KA" -H 'Content-Type: application/json' \
	    -H 'anthropic-version: 2023-06-01' --data-binary "${b%\}},\"stream\":true}" "$GW_URL/v1/messages")
	like "$(grep '^event:' <<<"$out" | tr '\n' ' ')" '^event: message_start event: content_block_start .*event: content_block_delta .*event: message_delta event: message_stop $' \
	    "/v1/messages streamed: a hit replayed as Anthropic events"
	is "$(ups mock-c-up)" "$((n0 + 1))" "... still no upstream call"
	b='{"model":"mock-c","temperature":0,"input":"resp MOCK{chunks=2}"}'
	req_at /v1/responses "$KA" "$b"
	req_at /v1/responses "$KA" "$b"
	is "$STATUS $(cache_hdr) $(ups mock-c-up)" "200 hit $((n0 + 2))" "/v1/responses: the second a hit"
	is "$(jx '[d["object"], d["output"][0]["content"][0]["text"]]' <<<"$BODY")" \
	    '["response", "tok0 tok1 "]' "... answered as a Response"
}

# Checks of the store, not of the front end: under the first server.
once() {
	local n0 i ok1 pids bg=()
	other_clients
	# Redaction: the key is the redacted request; a hit is restored with
	# the values of the request it answers.
	n0=$(ups mock-c-up)
	req "$KR" "$(body mock-c 'mail ivan.petrov@example.com now MOCK{say=1}')"
	like "$(content)" 'ivan\.petrov@example\.com' "redact: the answer is restored"
	req "$KR" "$(body mock-c 'mail anna.smirnova@example.org now MOCK{say=1}')"
	is "$(cache_hdr) $(ups mock-c-up)" "hit $((n0 + 1))" "redact: another address, the same redacted request: a hit"
	like "$(content)" 'anna\.smirnova@example\.org' "... restored with this request's address"
	unlike "$(content)" 'ivan' "... never the first request's"

	# llm_cache_requests_total counts every result.
	out=$(gw_curl "$GW_URL/metrics" | grep '^llm_cache_requests_total')
	like "$out" 'result="hit"} [1-9]' "metrics: llm_cache_requests_total{result=hit} counted"
	like "$out" 'result="miss"} [1-9]' "metrics: ... miss"
	like "$out" 'result="bypass"} [1-9]' "metrics: ... bypass"

	# A streamed tool call is assembled and replayed whole.
	n0=$(ups mock-c-up)
	for i in 1 2; do
		gw_sse -H "Authorization: Bearer $KA" \
		    -d "$(body mock-c "weather MOCK{tool=1,say=1,piece=2}" '"stream":true')" \
		    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/tool.$i" 2>&1
	done
	tool_sum() {
		python3 -c '
import json, sys
calls, fin, done = {}, None, False
for line in open(sys.argv[1]):
    t, _, ev = line.rstrip("\n").partition(" ")
    if not ev.startswith("data: "):
        continue
    if ev[6:] == "[DONE]":
        done = True
        continue
    for c in json.loads(ev[6:]).get("choices", []):
        for tc in c.get("delta", {}).get("tool_calls") or []:
            d = calls.setdefault(tc.get("index", 0), {"id": "", "name": "", "args": ""})
            d["id"] = tc.get("id") or d["id"]
            d["name"] += (tc.get("function") or {}).get("name") or ""
            d["args"] += (tc.get("function") or {}).get("arguments") or ""
        fin = c.get("finish_reason") or fin
print(json.dumps([calls, fin, done], sort_keys=True))' "$1"
	}
	is "$(ups mock-c-up)" $((n0 + 1)) "tool call streamed twice: one upstream call"
	is "$(tool_sum "$TMPDIR_T/tool.2")" "$(tool_sum "$TMPDIR_T/tool.1")" "... the replay carries the same tool call, finish and [DONE]"
	like "$(tool_sum "$TMPDIR_T/tool.1")" 'get_weather.*tool_calls", true' "... which is a whole get_weather call"

	# Not stored: an answer over 1 MiB; an answer of a fallback model.
	n0=$(ups mock-c-up)
	req "$KA" "$(body mock-c "huge MOCK{huge=1100000}")"
	req "$KA" "$(body mock-c "huge MOCK{huge=1100000}")"
	is "$STATUS $(cache_hdr) $(ups mock-c-up)" "200 miss $((n0 + 2))" "an answer over 1 MiB: served, not stored"
	req "$KA" "$(body mock-f "via fallback")"
	req "$KA" "$(body mock-f "via fallback")"
	is "$STATUS $(cache_hdr) $(hdr x-llmgate-model) $(ups mock-c-up)" "200 miss mock-c $((n0 + 4))" \
	    "an answer served by a fallback: not stored under the first model's key"

	# Expiry, on the fault build's clock: 601 s on, the entry is gone.
	req "$KA" "$(body mock-c "ttl")"
	req "$KA" "$(body mock-c "ttl")"
	is "$(cache_hdr)" hit "ttl: cached"
	n0=$(ups mock-c-up)
	printf '700\n' >"$LLMGATE_FAULT_DIR/clock.new" && mv -f "$LLMGATE_FAULT_DIR/clock.new" "$LLMGATE_FAULT_DIR/clock"
	req "$KA" "$(body mock-c "ttl")"
	is "$(cache_hdr) $(ups mock-c-up)" "miss $((n0 + 1))" "ttl: after cache_ttl: a miss, upstream"
	rm -f "$LLMGATE_FAULT_DIR/clock"
	req "$KA" "$(body mock-c "ttl")"
	is "$(cache_hdr)" hit "ttl: stored again"

	# Eviction at response_cache_max_mb = 1: four answers of 300 kB; the
	# oldest goes, the newest stays.
	for i in 1 2 3 4; do
		req "$KA" "$(body mock-c "big $i MOCK{huge=300000}")"
	done
	n0=$(ups mock-c-up)
	req "$KA" "$(body mock-c "big 4 MOCK{huge=300000}")"
	is "$(cache_hdr) $(ups mock-c-up) $(content | wc -c)" "hit $n0 300001" "evict: the newest 300 kB answer is a hit"
	req "$KA" "$(body mock-c "big 1 MOCK{huge=300000}")"
	is "$(cache_hdr) $(ups mock-c-up)" "miss $((n0 + 1))" "evict: the oldest was evicted (miss, upstream)"

	# SIGKILL in the middle of a store (the fault build's rcache-put point:
	# head and body written, the totals record locked): the client has
	# its answer, the store is rolled back by failchk, and the next
	# requests (other processes wait on the locks only until then) miss,
	# store and hit.
	n0=$(ups mock-c-up)
	touch "$LLMGATE_FAULT_DIR/rcache-put"
	chown "$GW_USER:$GW_GROUP" "$LLMGATE_FAULT_DIR/rcache-put"
	req "$KA" "$(body mock-c "killed store")"
	is "$STATUS $(content)" "200 tok0 tok1 tok2 " "killed in the store: the client has its answer"
	ok "... the process was killed there" test ! -e "$LLMGATE_FAULT_DIR/rcache-put"
	up
	req "$KA" "$(body mock-c "killed store")"
	is "$STATUS $(cache_hdr) $(ups mock-c-up)" "200 miss $((n0 + 2))" "... the store was rolled back: a miss"
	req "$KA" "$(body mock-c "killed store")"
	is "$STATUS $(cache_hdr) $(ups mock-c-up)" "200 hit $((n0 + 2))" "... stored again, then a hit"
	ok "... llmgate-admin check passes" admin check

	# SIGKILL while storing: 24 stores at once (answers spread over half a
	# second), the gateway processes killed as they come; the store passes
	# check and serves on.
	for i in $(seq 1 24); do
		curl -sS --max-time 60 -o /dev/null -H "Authorization: Bearer $KA" \
		    -H 'Content-Type: application/json' \
		    --data-binary "$(body mock-c "kill $i MOCK{first_byte_delay=0.$((i % 6))}")" \
		    "$GW_URL/v1/chat/completions" 2>/dev/null &
		bg+=($!)
	done
	wait_until 10 test "$(mock_log | jx 'sum(1 for e in d["log"] if "kill" in json.dumps(e.get("body", "")))')" -ge 4
	pids=$(gw_worker_pids)
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
	wait "${bg[@]}"
	up
	ok "kill -9 during stores: llmgate-admin check passes" admin check
	ok1=0
	for i in $(seq 1 24); do
		req "$KA" "$(body mock-c "kill $i MOCK{first_byte_delay=0.$((i % 6))}")"
		[ "$STATUS" = 200 ] && ok1=$((ok1 + 1))
	done
	is "$ok1" 24 "... then every request answered"
	n0=$(ups mock-c-up)
	ok1=0
	for i in $(seq 1 24); do
		req "$KA" "$(body mock-c "kill $i MOCK{first_byte_delay=0.$((i % 6))}")"
		[ "$(cache_hdr)" = hit ] && ok1=$((ok1 + 1))
	done
	is "$ok1 $(ups mock-c-up)" "24 $n0" "... and stored: all 24 hit, no upstream call"
}

for_each_server "$CONF" scenario

# A cache_scope the gateway does not know is refused at load.
cp "$CONF" "$TMPDIR_T/bad.ini"
printf '\n[model mock-x]\nprovider = mock\ncache_ttl = 5\ncache_scope = tenant\n' >>"$TMPDIR_T/bad.ini"
out=$("$LLMGATE" --check-config -c "$TMPDIR_T/bad.ini" 2>&1)
like "$out" 'cache_scope: expected key, agent or global' "cache_scope = tenant: refused at load"

# A CGI miss and hit under valgrind (or ASan): the lookup, the replay, the
# store, streamed and not.
vg() {	# LABEL STREAM EXPECTED-CACHE
	local log=$TMPDIR_T/vg.$1 out
	body mock-c "valgrind $2" "\"stream\":$2" >"$TMPDIR_T/vg.json"
	out=$(export REQUEST_METHOD=POST REQUEST_URI=/v1/chat/completions \
	    CONTENT_LENGTH=$(wc -c <"$TMPDIR_T/vg.json") HTTP_AUTHORIZATION="Bearer $KA" \
	    LLMGATE_CONFIG="$CONF"; memcheck "$log" "$LLMGATE" <"$TMPDIR_T/vg.json" \
	    2>"$log.stderr")
	is "$?" 0 "memcheck $1: exit status"
	ok "memcheck $1: no errors, nothing lost" memcheck_clean "$log" ||
	    diag "$(head -c 3000 "$log")"
	like "$out" $'^Status: 200' "memcheck $1: answered 200"
	like "$out" "X-Llmgate-Cache: $3" "memcheck $1: X-Llmgate-Cache: $3"
}
vg miss false miss
vg hit false hit
vg stream-miss true miss
vg stream-hit true hit

done_testing
