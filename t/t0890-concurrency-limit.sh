#!/bin/bash
# t0890-concurrency-limit.sh: max_concurrent, a key's and a tier's, holds
# across every process of the gateway, under lighttpd (one process, worker
# threads) and Apache mod_fcgid (one request per process, many processes).
# Judged by what the mock upstream saw (each request carries a tag in its
# prompt; the mock logs when each answer began and ended) and by the store:
#   1. a key with max_concurrent 2 fires 10 slow streams at once: the mock
#      never has more than 2 of them open, and had 2; every other answer is
#      429 too_many_concurrent_requests with Retry-After: 1, never reached
#      the mock, and its usage row costs nothing; nothing stays reserved;
#   2. a tier with max_concurrent 3, two keys firing 5 streams each: never
#      more than 3 of the tier's open upstream, the refusals name the tier;
#   3. a key with max_concurrent 1 whose process is SIGKILLed mid-stream:
#      while it holds the slot its next chat, embeddings and images
#      requests get 429; after the reclaim (polled) the key is served
#      again, and the killed request is billed (worker_died); then the
#      knobs: llmgate-admin key update/show/list, POST /admin/keys;
#   4. the master key has no such limit (nor a tier: the default tier's
#      limit of 1 is not its): its 4 concurrent streams are all served;
#   5. the attack: T0890_ATTACK (200) concurrent requests of one key with
#      max_concurrent 3: never more than 3 upstream at once, every answer
#      200 or 429, no usage money for a refused one.
. "$(dirname "$0")/lib.sh"

ATTACK=${T0890_ATTACK:-200}

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0890
export LLMGATE_MASTER_KEY=sk-master-t0890-key
CONF=$TMPDIR_T/llmgate.ini
write_mock_gateway "$CONF" "default_tier = TF" "reservation_ttl = 600"
cat >>"$CONF" <<EOF
[model mock-c]
provider = mock
input_price = 1
output_price = 2
max_tokens = 100
rpm = 1000000

; The default tier allows one request in flight: the master key, which
; has no tier, is not held to it; the other keys name their tier.
[tier TF]
max_concurrent = 1

[tier TU]

[tier TL]
max_concurrent = 3
EOF

# body TAG MOCK-DIRECTIVES [STREAM]: a chat body whose prompt carries TAG.
body() {
	printf '{"model":"mock-c",%s"messages":[{"role":"user","content":"tag=%s MOCK{%s}"}]}' \
	    "${3:+\"stream\":true,}" "$1" "$2"
}

# fire DIR KEY BODY: one request in the background; DIR/code, DIR/hdr, DIR/body.
# (A long --max-time: with the shipped lighttpd's 4 threads, 200 requests at
# once queue behind the streams: 93 s for the last one on a loaded machine.)
fire() {
	mkdir -p "$1"
	curl -sS -N --max-time 300 -o "$1/body" -D "$1/hdr" -w '%{http_code}' \
	    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
	    --data-binary "$3" "$GW_URL/v1/chat/completions" >"$1/code" 2>"$1/err" &
	FIRED+=($!)
}

# Apache spawns processes on demand, a few at a time: start some first,
# so that a burst meets processes, not a queue at the spawner.
warm_apache() {
	local j
	[ "$SERVER_KIND" = apache ] || return 0
	FIRED=()
	for ((j = 0; j < 12; j++)); do
		fire "$TMPDIR_T/warm/$j" "$LLMGATE_MASTER_KEY" "$(body warm first_byte_delay=1)"
	done
	wait "${FIRED[@]}"
}

# upstream TAG-ERE: "N MAX" of the mock's log: N answers whose prompt
# matched the tag, MAX the most of them open at one time. A stream is open
# from when the mock logged its request (after the gateway admitted it) to
# when the mock began to write its last event (before the gateway can have
# read it, and so settled): both inside the gateway's admission..settlement.
# Its "t_end" would not do: the mock notes it after the write, and under
# load the gateway may have settled and sent the next request first.
upstream() {
	mock_log | python3 -c '
import json, re, sys, time
ere = re.compile(sys.argv[1])
ev = []
n = 0
for e in json.load(sys.stdin)["log"]:
    if not ere.search(json.dumps(e.get("body"))):
        continue
    n += 1
    sent = e.get("sent") or []
    ev.append((e["t"], 1))
    if not e.get("done"):
        end = time.time() + 1e6
    else:
        end = sent[-1] if sent else e["t_end"]
    ev.append((end, -1))
cur = top = 0
for t, d in sorted(ev, key=lambda x: (x[0], x[1])):	# an end before a start at a tie
    cur += d
    top = max(top, cur)
print(n, top)' "$1"
}

# answers DIR...: "N200 N429 OTHER" where OTHER lists what was neither, and
# every 429 must be too_many_concurrent_requests with Retry-After: 1
# (else it is counted in OTHER too).
answers() {
	local d n200=0 n429=0 other=""
	for d; do
		case $(cat "$d/code") in
		200)	n200=$((n200 + 1)) ;;
		429)	n429=$((n429 + 1))
			[ "$(jx 'd["error"]["code"], d["error"]["type"]' <"$d/body")" = '["too_many_concurrent_requests", "rate_limit_error"]' ] ||
			    other+=" ${d##*/}:429:$(head -c 200 "$d/body")"
			[ "$(tr -d '\r' <"$d/hdr" | sed -n 's/^[Rr]etry-[Aa]fter: //p')" = 1 ] ||
			    other+=" ${d##*/}:429-without-Retry-After-1" ;;
		*)	other+=" ${d##*/}:$(cat "$d/code"):$(head -c 200 "$d/body" "$d/err" | tr '\n' ' ')" ;;
		esac
	done
	echo "$n200 $n429${other:+ $other}"
}

rid_of() { tr -d '\r' <"$1/hdr" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p' | tail -n 1; }

# refused_rows KEY-NAME[,KEY-NAME...] DIR...: the 429 answers among DIR
# whose usage row (of one of the keys) is missing or not status 429 at
# cost 0 (empty: none).
refused_rows() {
	local names=$1 name d rids=()
	shift
	for d; do
		[ "$(cat "$d/code")" = 429 ] && rids+=("$(rid_of "$d")")
	done
	for name in ${names//,/ }; do
		admin usage --rows --key "$name"
	done | python3 -c '
import json, sys
want = set(sys.argv[1:])
seen = {}
for line in sys.stdin:
    r = json.loads(line)
    if r["request_id"] in want:
        seen[r["request_id"]] = r
bad = [rid for rid in want if rid not in seen]
bad += ["%s: status %s cost %s" % (rid, r["status"], r["cost_micro_usd"])
        for rid, r in seen.items() if r["status"] != 429 or r["cost_micro_usd"] != 0]
print("; ".join(sorted(bad)))' "${rids[@]}"
}

reserved_of() { admin balance "$1" --json | jx 'd["reserved_micro_usd"]'; }

# The gateway processes with an upstream request the mock is answering.
busy_procs() { gw_streaming_pids $(gw_binary_pids); }

chunks_at_least() {	# N DIR: DIR/body holds N chunks or more
	[ "$(grep -c '^data: {' "$2/body" 2>/dev/null)" -ge "$1" ]
}

served_again() {	# KEY: a short request of KEY is answered 200
	chat_as "$1" mock-c "tag=poll MOCK{chunks=1}" '"max_tokens":5'
	[ "$STATUS" = 200 ]
}

scenarios() {
	local k=$SERVER_KIND i d dirs got n top out rid victims t0

	# --- 1. A key's limit -------------------------------------------------
	create_key KA --name "two-$k" --tier TU --max-concurrent 2
	warm_apache
	mock_clear
	FIRED=() dirs=()
	for ((i = 1; i <= 10; i++)); do
		d=$TMPDIR_T/$k/key/$i
		fire "$d" "$KA" "$(body "ka-$k" chunks=30,delay=0.2 stream)"
		dirs+=("$d")
	done
	wait "${FIRED[@]}"
	got=$(answers "${dirs[@]}")
	read -r n200 n429 out <<<"$got"
	is "$out" "" "$k key: every answer is 200 or 429 too_many_concurrent_requests with Retry-After: 1 ($n200 served, $n429 refused)"
	read -r n top <<<"$(upstream "tag=ka-$k ")"
	ok "$k key: never more than 2 of its streams open upstream (most: $top)" test "$top" -le 2
	is "$top" 2 "$k key: and 2 at once were (the limit, not less)"
	is "$n" "$n200" "$k key: the upstream saw exactly the $n200 served ones; no refused request reached it"
	ok "$k key: most were refused ($n429 of 10)" test "$n429" -ge 5
	is "$(refused_rows "two-$k" "${dirs[@]}")" "" "$k key: each refused request has its usage row: status 429, cost 0"
	is "$(reserved_of "two-$k")" 0 "$k key: nothing stays reserved"

	# --- 2. A tier's limit, all its keys together -------------------------
	create_key KB1 --name "tier1-$k" --tier TL
	create_key KB2 --name "tier2-$k" --tier TL
	warm_apache
	mock_clear
	FIRED=() dirs=()
	for ((i = 1; i <= 10; i++)); do
		d=$TMPDIR_T/$k/tier/$i
		if [ $((i % 2)) -eq 0 ]; then
			fire "$d" "$KB1" "$(body "tl-$k" chunks=30,delay=0.2 stream)"
		else
			fire "$d" "$KB2" "$(body "tl-$k" chunks=30,delay=0.2 stream)"
		fi
		dirs+=("$d")
	done
	wait "${FIRED[@]}"
	got=$(answers "${dirs[@]}")
	read -r n200 n429 out <<<"$got"
	is "$out" "" "$k tier: every answer is 200 or 429 too_many_concurrent_requests with Retry-After: 1 ($n200 served, $n429 refused)"
	read -r n top <<<"$(upstream "tag=tl-$k ")"
	ok "$k tier: never more than 3 of the tier's streams open upstream (most: $top)" test "$top" -le 3
	is "$top" 3 "$k tier: and 3 at once were"
	is "$n" "$n200" "$k tier: no refused request reached the upstream"
	out=""
	for d in "${dirs[@]}"; do
		[ "$(cat "$d/code")" != 429 ] || grep -q 'for tier TL' "$d/body" || out+=" ${d##*/}"
	done
	is "$out" "" "$k tier: every refusal names the tier"
	is "$(refused_rows "tier1-$k,tier2-$k" "${dirs[@]}")" "" \
	    "$k tier: refused requests cost nothing"

	# --- 3. A killed holder's slot comes back with the reclaim ------------
	create_key KC --name "one-$k" --tier TU --max-concurrent 1
	warm_apache
	mock_clear
	FIRED=()
	d=$TMPDIR_T/$k/kill
	fire "$d" "$KC" "$(body "kc-$k" chunks=150,delay=0.2 stream)"
	if ok "$k kill: the key's one stream runs" wait_until 30 chunks_at_least 5 "$d"; then
		chat_as "$KC" mock-c "tag=second" '"max_tokens":5'
		is "$STATUS" 429 "$k kill: a second request of the key gets 429 while it runs"
		# Every route that calls upstream counts, and is refused alike.
		api "$KC" POST /v1/embeddings "{\"model\":\"mock-c\",\"input\":\"tag=emb-$k\"}"
		is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "429 too_many_concurrent_requests" \
		    "$k kill: so does an embeddings request"
		api "$KC" POST /v1/images/generations "{\"model\":\"mock-c\",\"prompt\":\"tag=img-$k\"}"
		is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "429 too_many_concurrent_requests" \
		    "$k kill: and an images request"
		is "$(upstream "tag=(emb|img)-$k")" "0 0" "$k kill: neither reached the upstream"
		rid=$(rid_of "$d")
		victims=$(busy_procs)
		ok "$k kill: found the process serving it: $(echo $victims)" test -n "$victims"
		[ -z "$victims" ] || kill -KILL $victims
		t0=$EPOCHREALTIME
		wait "${FIRED[@]}"
		# Under nginx, systemd would start spawn-fcgi's gateway again.
		if [ "$k" = nginx ]; then
			wait_until 10 bash -c "! kill -0 $victims 2>/dev/null"
			restart_gateway
		fi
		if ok "$k kill: after the kill, the key is served again once its slot is reclaimed" \
		    wait_until 30 served_again "$KC"; then
			diag "$k kill: served again $(python3 -c "print('%.2f' % ($EPOCHREALTIME - $t0))") s after the kill"
		fi
		is "$(admin usage --rows --key "one-$k" | python3 -c '
import json, sys
print(sum(1 for l in sys.stdin if json.loads(l)["request_id"] == sys.argv[1] and json.loads(l)["worker_died"]))' "$rid")" \
		    1 "$k kill: the killed request is billed once, worker_died"
		is "$(reserved_of "one-$k")" 0 "$k kill: nothing stays reserved"
		api "$KC" POST /v1/embeddings "{\"model\":\"mock-c\",\"input\":\"tag=emb2-$k\"}"
		is "$STATUS" 200 "$k kill: and its embeddings are served again"
	else
		kill "${FIRED[@]}" 2>/dev/null
		wait "${FIRED[@]}" 2>/dev/null
	fi

	# --- The knobs: llmgate-admin key update, POST /admin/keys ------------
	is "$(admin key update "one-$k" --max-concurrent 3 --json | jx 'd["max_concurrent"]')" 3 \
	    "$k: key update --max-concurrent 3"
	like "$(admin key show "one-$k")" 'max concurrent: 3' "$k: key show says so"
	like "$(admin key list)" "one-$k .*concurrent=3" "$k: key list too"
	api "$LLMGATE_MASTER_KEY" POST /admin/keys "{\"name\":\"posted-$k\",\"max_concurrent\":5}"
	is "$STATUS $(jx 'd["max_concurrent"]' <<<"$BODY")" "201 5" "$k: POST /admin/keys takes max_concurrent"
	api "$LLMGATE_MASTER_KEY" POST /admin/keys "{\"name\":\"neg-$k\",\"max_concurrent\":-1}"
	is "$STATUS $(jx 'd["error"]["param"]' <<<"$BODY")" "400 max_concurrent" "$k: a negative one is 400"

	# --- 4. The master key is not limited --------------------------------
	mock_clear
	FIRED=() dirs=()
	for ((i = 1; i <= 4; i++)); do
		d=$TMPDIR_T/$k/master/$i
		fire "$d" "$LLMGATE_MASTER_KEY" "$(body "master-$k" chunks=10,delay=0.2 stream)"
		dirs+=("$d")
	done
	wait "${FIRED[@]}"
	is "$(answers "${dirs[@]}")" "4 0" "$k master: its 4 concurrent streams are all served"

	# --- 5. The attack: hundreds at once against max_concurrent 3 ---------
	create_key KE --name "three-$k" --tier TU --max-concurrent 3
	warm_apache
	mock_clear
	FIRED=() dirs=()
	t0=$EPOCHREALTIME
	for ((i = 1; i <= ATTACK; i++)); do
		d=$TMPDIR_T/$k/attack/$i
		if [ $((i % 2)) -eq 0 ]; then
			fire "$d" "$KE" "$(body "ke-$k" chunks=5,delay=0.1 stream)"
		else
			fire "$d" "$KE" "$(body "ke-$k" first_byte_delay=0.3,chunks=2 stream)"
		fi
		dirs+=("$d")
	done
	wait "${FIRED[@]}"
	got=$(answers "${dirs[@]}")
	read -r n200 n429 out <<<"$got"
	diag "$k attack: $ATTACK requests in $(python3 -c "print('%.1f' % ($EPOCHREALTIME - $t0))") s: $n200 served, $n429 refused, by $(grep -rhE "usage id=[^ ]+ key=three-$k .*status=200 " "$SERVER_DIR" 2>/dev/null |
	    grep -o 'llmgate\[[0-9]*\]' | sort -u | wc -l) gateway process(es)"
	is "$out" "" "$k attack: every answer is 200 or 429 too_many_concurrent_requests with Retry-After: 1"
	read -r n top <<<"$(upstream "tag=ke-$k ")"
	ok "$k attack: never more than 3 upstream at once (most: $top, $n upstream calls)" test "$top" -le 3
	ok "$k attack: some were served ($n200), some refused ($n429)" test "$n200" -ge 3 -a "$n429" -ge 1
	is "$n" "$n200" "$k attack: no refused request reached the upstream"
	is "$(refused_rows "three-$k" "${dirs[@]}")" "" "$k attack: refused requests cost nothing"
	is "$(reserved_of "three-$k")" 0 "$k attack: nothing stays reserved"
}

# The front ends whose process models differ (threads in one process,
# many single-request processes); T0890_SERVERS="nginx cgi" runs the others.
for kind in ${T0890_SERVERS:-${LLMGATE_SERVERS:-lighttpd apache}}; do
	diag "=== $kind ==="
	"start_$kind" "$CONF"
	scenarios
	stop_server
done

out=$(admin check --json)
is "$(jx 'd["problems"]' <<<"$out")" '[]' "llmgate-admin check is clean"
done_testing
