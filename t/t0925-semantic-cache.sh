#!/bin/bash
# t0925-semantic-cache.sh: the semantic cache ([model] semantic_cache),
# under every front end, against the mock's bag-of-words embeddings
# (t/mock_embeddings.py bow=1: the cosine of two texts is about the share
# of their words): the same words reordered with one added (cosine about
# 0.98) is a hit by similarity (no chat upstream call, the first answer,
# X-Llmgate-Cache: hit, one embeddings call); four words of thirty-one
# changed (about 0.87) is a miss that goes upstream; another key never
# hits (scope); an exact hit embeds nothing; the usage rows: the
# embeddings call billed on a row of its own (route embeddings, semantic),
# the hit flagged cache_hit and semantic and billed at cache_hit_price.
# Once (store, not front end): the cap (semantic_max_entries = 3) evicts
# the oldest vector; the embedding provider failing (500) still serves
# the chat request upstream, counted as an error; a redacting policy
# embeds the redacted text (the mock's embeddings log holds no address);
# another system prompt never hits; /v1/messages hits in its own shape;
# llmgate-admin check passes; bad settings are refused at load; valgrind
# on a CGI miss and a semantic hit.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0925
export LLMGATE_MASTER_KEY=sk-master-t0925-key
CONF=$TMPDIR_T/llmgate.ini

write_mock_gateway "$CONF" "default_tier = T1"
cat >>"$CONF" <<EOF
[model mock-s]
provider = mock
upstream = mock-s-up
input_price = 10
output_price = 20
cache_ttl = 600
cache_hit_price = 1
semantic_cache = on
semantic_model = mock-emb
semantic_max_entries = 3

[model mock-emb]
provider = mock
upstream = emb-up@bow=1
input_price = 1

; Its embeddings model always fails: the chat is served upstream.
[model mock-sf]
provider = mock
upstream = mock-sf-up
cache_ttl = 600
semantic_cache = on
semantic_model = mock-emb-bad

[model mock-emb-bad]
provider = mock
upstream = emb-bad-up@bow=1,status=500
input_price = 1

; mock-n: mock-s without the semantic cache: what a request reserves without it.
[model mock-n]
provider = mock
upstream = mock-s-up
input_price = 10
output_price = 20
cache_ttl = 600

[tier T1]
rpm = 0

[policy redactall]
pii = redact
ip = off
EOF

create_key KC --name kc
create_key KR --name kr --policy redactall
create_key KV --name kv

req() {		# KEY BODY [CURL-ARGS...]: sets STATUS, BODY, HDRS
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
ups() { mock_log | jx "d['requests'].get('$1', 0)"; }
embeds() { ups 'emb-up@bow=1'; }
content() { jx 'd["choices"][0]["message"]["content"]' <<<"$BODY"; }
cache_hdr() { hdr x-llmgate-cache; }
rows() { admin usage --rows --key "$1" --from 2000-01-01 --to 2100-01-01; }
rows_of() {	# KEY-NAME REQUEST-ID N: that request's N usage rows, once settled
	wait_until 20 test "$(rows "$1" | grep -c "\"$2\"")" -ge "$3"
	rows "$1" | grep "\"$2\""
}

# Thirty words, and the server's name: A; the same reversed with one more
# word: B (cosine about 31/sqrt(31 x 32) = 0.98); four of A's replaced: C
# (about 27/31 = 0.87).
W=(alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima
   mike november oscar papa quebec romeo sierra tango uniform victor whiskey
   xray yankee zulu apple banana cherry grape)
words_a() { echo "${W[*]} $1"; }
words_b() { local i out="please $1"; for ((i = ${#W[@]} - 1; i >= 0; i--)); do out+=" ${W[i]}"; done; echo "$out"; }
words_c() { echo "red green blue yellow ${W[*]:4} $1"; }

scenario() {
	local S=$SERVER_KIND n0 e0 a out
	# Keys of this server's own: the scope keeps the servers apart.
	create_key KA --name "ka-$S"
	create_key KB --name "kb-$S"
	n0=$(ups mock-s-up)
	e0=$(embeds)
	req "$KA" "$(body mock-s "$(words_a "$S") MOCK{say=1}")"
	is "$STATUS $(cache_hdr) $(ups mock-s-up) $(embeds)" "200 miss $((n0 + 1)) $((e0 + 1))" \
	    "$S: A: a miss, upstream, one embeddings call"
	a=$(content)
	like "$a" 'alpha bravo' "$S: ... the answer says A"

	req "$KA" "$(body mock-s "$(words_b "$S")")"
	is "$STATUS $(cache_hdr) $(ups mock-s-up) $(embeds)" "200 hit $((n0 + 1)) $((e0 + 2))" \
	    "$S: B (A's words reordered, one more): a hit, no chat upstream call, one embeddings call"
	is "$(content)" "$a" "$S: ... A's answer"
	like "$(hdr x-llmgate-cache-similarity)" '^0\.9[5-9][0-9]*$' "$S: ... X-Llmgate-Cache-Similarity >= 0.95"
	out=$(rows_of "ka-$S" "$(hdr x-request-id)" 2)
	is "$(grep '"route": *"chat"' <<<"$out" | jx '[d["cache_hit"], d["semantic"], d["cost_micro_usd"] == d["prompt_tokens"] + d["completion_tokens"], d["attempts"]]')" \
	    "[true, true, true, 0]" "$S: ... its chat row: cache_hit, semantic, billed at cache_hit_price, no attempt"
	is "$(grep '"route": *"embeddings"' <<<"$out" | jx '[d["semantic"], d["served"], d["status"], d["prompt_tokens"] > 0, d["cost_micro_usd"] > 0, d["cache_hit"]]')" \
	    '[true, "mock-emb", 200, true, true, false]' "$S: ... and the embeddings call's row of its own, billed"

	req "$KA" "$(body mock-s "$(words_c "$S")")"
	is "$STATUS $(cache_hdr) $(ups mock-s-up) $(embeds)" "200 miss $((n0 + 2)) $((e0 + 3))" \
	    "$S: C (four of 31 words changed): a miss, upstream"

	req "$KB" "$(body mock-s "$(words_b "$S")")"
	is "$STATUS $(cache_hdr) $(ups mock-s-up)" "200 miss $((n0 + 3))" \
	    "$S: key kb, B: a miss (scope: ka's vectors are not kb's)"

	e0=$(embeds)
	req "$KA" "$(body mock-s "$(words_a "$S") MOCK{say=1}")"
	is "$STATUS $(cache_hdr) $(ups mock-s-up) $(embeds)" "200 hit $((n0 + 3)) $e0" \
	    "$S: A again: an exact hit, nothing embedded"
	is "$(hdr x-llmgate-cache-similarity)" "" "$S: ... no similarity header"

	# A stream hits by similarity too, replayed as SSE.
	gw_sse -H "Authorization: Bearer $KA" -D "$TMPDIR_T/sse.h" \
	    -d "$(body mock-s "$(words_b "$S") thanks" '"stream":true')" \
	    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/s1" 2>&1
	like "$(tr -d '\r' <"$TMPDIR_T/sse.h")" $'x-llmgate-cache: hit|X-Llmgate-Cache: hit' \
	    "$S: B streamed (one more word): a hit"
	like "$(cat "$TMPDIR_T/s1")" 'alpha bravo.*\[DONE\]' "$S: ... A's answer replayed, [DONE]"
	is "$(ups mock-s-up)" $((n0 + 3)) "$S: ... no chat upstream call"

	on_first_server || return 0
	once
}

once() {
	local n0 e0 i out b1 b2 r1 r2
	# The embedding is reserved with the request: mock-s reserves what
	# mock-n does plus its prompt's bound (body bytes) at mock-emb's
	# 1 USD per 1M tokens, a micro-dollar a byte.
	b1=$(body mock-s "reserve me $RANDOM-$RANDOM")
	b2=${b1/\"mock-s\"/\"mock-n\"}
	req "$KC" "$b1"
	r1=$(rows kc | grep -F "$(hdr x-request-id)" | grep '"route":"chat"' | jx 'd["reserved_micro_usd"]')
	req "$KC" "$b2"
	r2=$(rows kc | grep -F "$(hdr x-request-id)" | grep '"route":"chat"' | jx 'd["reserved_micro_usd"]')
	is "$((r1 - r2))" "$(( ${#b1} ))" "the embedding's worst case is reserved with the chat (${#b1} tokens at 1 USD/1M)"
	# The cap: four unrelated prompts of key kc (3 kept); the first is gone.
	topic() { local j out=""; for j in $(seq 1 20); do out+="t$1w$j "; done; echo "$out${2:-}"; }
	for i in 1 2 3 4; do
		req "$KC" "$(body mock-s "$(topic $i)")"
	done
	n0=$(ups mock-s-up)
	req "$KC" "$(body mock-s "$(topic 4 again)")"
	is "$(cache_hdr) $(ups mock-s-up)" "hit $n0" "cap 3: the newest vector hits"
	req "$KC" "$(body mock-s "$(topic 1 again)")"
	is "$(cache_hdr) $(ups mock-s-up)" "miss $((n0 + 1))" "cap 3: the oldest was evicted (miss, upstream)"
	req "$KC" "$(body mock-s "$(topic 2 again)")"
	is "$(cache_hdr) $(ups mock-s-up)" "miss $((n0 + 2))" "... the second oldest too (topic1's store evicted it)"

	# Another system prompt: another bucket, never a hit.
	n0=$(ups mock-s-up)
	out="{\"model\":\"mock-s\",\"temperature\":0,\"messages\":[{\"role\":\"system\",\"content\":\"be terse\"},{\"role\":\"user\",\"content\":\"$(topic 9 again)\"}]}"
	req "$KC" "$(body mock-s "$(topic 9)")"
	req "$KC" "$out"
	is "$(cache_hdr) $(ups mock-s-up)" "miss $((n0 + 2))" "a system prompt added: another bucket, a miss"

	# The embedding provider fails: the chat request is served upstream.
	n0=$(ups mock-sf-up)
	req "$KA" "$(body mock-sf "failing embed")"
	is "$STATUS $(cache_hdr) $(ups mock-sf-up) $(ups 'emb-bad-up@bow=1,status=500')" "200 miss $((n0 + 1)) 1" \
	    "embedding provider 500: the chat is served upstream (a miss)"
	is "$(hdr x-llmgate-model) $(hdr x-llmgate-attempts) $(jx 'd["object"]' <<<"$BODY")" \
	    "mock-sf 1 chat.completion" "... its headers and body are the chat's alone"
	out=$(rows_of "ka-$SERVER_KIND" "$(hdr x-request-id)" 2)
	is "$(grep '"route": *"embeddings"' <<<"$out" | jx '[d["status"], d["semantic"], d["cost_micro_usd"], d["served"]]')" \
	    '[500, true, 0, ""]' "... the failed embeddings call has its row: 500, not billed"
	req "$KA" "$(body mock-sf "failing embed")"
	is "$STATUS $(cache_hdr) $(ups mock-sf-up)" "200 hit $((n0 + 1))" "... the exact cache still works"
	out=$(gw_curl "$GW_URL/metrics" | grep '^llm_semantic_lookups_total')
	like "$out" 'result="error"} [1-9]' "metrics: llm_semantic_lookups_total{result=error} counted"
	like "$out" 'result="hit"} [1-9]' "metrics: ... hit"
	like "$out" 'result="miss"} [1-9]' "metrics: ... miss"

	# /v1/messages shares the pipeline: a hit by similarity in its shape.
	n0=$(ups mock-s-up)
	for out in "$(words_a anth)" "$(words_b anth)"; do
		HDRS=$TMPDIR_T/api.headers
		BODY=$(curl -sS --max-time 60 -D "$HDRS" -H "x-api-key: $KA" \
		    -H 'Content-Type: application/json' -H 'anthropic-version: 2023-06-01' \
		    --data-binary "{\"model\":\"mock-s\",\"max_tokens\":50,\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"$out\"}]}" \
		    "$GW_URL/v1/messages")
	done
	is "$(cache_hdr) $(ups mock-s-up) $(jx 'd["type"]' <<<"$BODY")" "hit $((n0 + 1)) message" \
	    "/v1/messages: the reworded question hits, answered as an Anthropic message"

	# Redaction: the embedded text is the redacted one.
	req "$KR" "$(body mock-s "write to ivan.petrov@example.com about the invoice ${W[*]}")"
	is "$STATUS" 200 "redact: answered"
	out=$(mock_log | jx '[e["body"]["input"] for e in d["log"] if e["path"].endswith("/embeddings") and "invoice" in json.dumps(e["body"])]')
	like "$out" 'invoice' "redact: the text was embedded"
	unlike "$out" 'ivan|petrov|example\.com' "... without the address"
	req "$KR" "$(body mock-s "write to anna.smirnova@example.org about the invoice ${W[*]} please")"
	is "$(cache_hdr)" hit "... a similar request with another address: a hit"
	ok "llmgate-admin check passes (the embeddings rows settled without reservations)" admin check
}

for_each_server "$CONF" scenario

# Refused at load: semantic_cache without cache_ttl, or without a model.
cp "$CONF" "$TMPDIR_T/bad.ini"
printf '\n[model mock-x]\nprovider = mock\nsemantic_cache = on\nsemantic_model = mock-emb\n' >>"$TMPDIR_T/bad.ini"
out=$("$LLMGATE" --check-config -c "$TMPDIR_T/bad.ini" 2>&1)
like "$out" 'semantic_cache = on needs cache_ttl' "semantic_cache without cache_ttl: refused at load"
cp "$CONF" "$TMPDIR_T/bad.ini"
printf '\n[model mock-x]\nprovider = mock\ncache_ttl = 5\nsemantic_cache = on\nsemantic_model = nope\n' >>"$TMPDIR_T/bad.ini"
out=$("$LLMGATE" --check-config -c "$TMPDIR_T/bad.ini" 2>&1)
like "$out" 'semantic_model: no \[model nope\]' "semantic_model naming no model: refused at load"
cp "$CONF" "$TMPDIR_T/bad.ini"
printf '\n[model mock-x]\nprovider = mock\ncache_ttl = 5\nsemantic_threshold = 1.5\n' >>"$TMPDIR_T/bad.ini"
out=$("$LLMGATE" --check-config -c "$TMPDIR_T/bad.ini" 2>&1)
like "$out" 'semantic_threshold: "1.5" is not a number in \(0, 1\]' "semantic_threshold = 1.5: refused at load"

# A CGI miss and a semantic hit under valgrind (or ASan): the internal
# embeddings call, the lookup, the store.
vg() {	# LABEL TEXT EXPECTED-CACHE
	local log=$TMPDIR_T/vg.$1 out
	body mock-s "$2" >"$TMPDIR_T/vg.json"
	out=$(export REQUEST_METHOD=POST REQUEST_URI=/v1/chat/completions \
	    CONTENT_LENGTH=$(wc -c <"$TMPDIR_T/vg.json") HTTP_AUTHORIZATION="Bearer $KV" \
	    LLMGATE_CONFIG="$CONF"; memcheck "$log" "$LLMGATE" <"$TMPDIR_T/vg.json" \
	    2>"$log.stderr")
	is "$?" 0 "memcheck $1: exit status"
	ok "memcheck $1: no errors, nothing lost" memcheck_clean "$log" ||
	    diag "$(head -c 3000 "$log")"
	like "$out" $'^Status: 200' "memcheck $1: answered 200"
	like "$out" "X-Llmgate-Cache: $3" "memcheck $1: X-Llmgate-Cache: $3"
}
vg miss "$(words_a valgrind)" miss
vg hit "$(words_b valgrind)" hit

done_testing
