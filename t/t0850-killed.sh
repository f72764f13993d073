#!/bin/bash
# t0850-killed.sh: a gateway process SIGKILLed in the middle of streams
# leaves nothing held and nothing unbilled. Under every front end, in a
# loop: a prepaid key whose balance just covers two slow streams (a third
# request gets 402 while they run); the processes serving them are killed
# mid-stream; then, polling the store (no fixed sleeps):
#   - within 10 s each killed request has exactly one usage row flagged
#     worker_died, billed above zero (the prompt estimate and the progress
#     the stream recorded) and at most what was reserved, with its ledger
#     debit, and nothing stays reserved;
#   - the next request of the key is admitted at once (no 402);
#   - the balance never goes below zero, and llmgate-admin check is clean.
# A kill that lands while the process is inside Berkeley DB leaves a store
# that needs recovery, which the gateway runs by itself (t0870): such a
# round gets 30 s, is counted, and its killed requests must still be
# billed, with no operator step.
# Who reclaims: the other gateway processes under Apache mod_fcgid, the
# respawned process under lighttpd and nginx + spawn-fcgi (systemd restarts
# it there), the next CGI process under CGI; and llmgate-admin reclaim when
# no gateway process is left.
. "$(dirname "$0")/lib.sh"

ITERS=${T0850_ITERS:-5}		# kill rounds per front end
STREAMS=2			# streams per round

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0850
export LLMGATE_MASTER_KEY=sk-master-t0850-key
CONF=$TMPDIR_T/llmgate.ini
write_mock_gateway "$CONF"
cat >>"$CONF" <<EOF
[model mock-k]
provider = mock
input_price = 100
output_price = 1000
max_tokens = 200
EOF

# 60 chunks 0.2 s apart: 12 s of stream; killed after 15 (3 s: a progress
# record is written every 2 s).
STREAM='{"model":"mock-k","stream":true,"messages":[{"role":"user","content":"long story MOCK{chunks=60,delay=0.2}"}]}'
SMALL='{"model":"mock-k","max_tokens":5,"messages":[{"role":"user","content":"short"}]}'
WARM='{"model":"mock-k","max_tokens":5,"messages":[{"role":"user","content":"warm MOCK{first_byte_delay=0.5}"}]}'

usd() { python3 -c 'import sys; v = int(sys.argv[1]); print("%s%d.%06d" % ("-" if v < 0 else "", abs(v) // 10**6, abs(v) % 10**6))' "$1"; }

# The worst case the gateway reserves for BODY, from its 402 to a key
# without money ("... may cost up to $X.").
worst_of() {	# KEY BODY
	api "$1" POST /v1/chat/completions "$2"
	[ "$STATUS" = 402 ] || { echo 0; return; }
	jx 'd["error"]["message"]' <<<"$BODY" | python3 -c '
import re, sys
m = re.search(r"may cost up to \$([0-9]+)\.([0-9]{6})", sys.stdin.read())
print(int(m.group(1)) * 10**6 + int(m.group(2)) if m else 0)'
}

balance_of() { admin balance "$1" --json | jx "d[\"$2\"]"; }

# stream DIR KEY: one stream in the background (DIR/hdr, DIR/body, DIR/code).
stream() {
	mkdir -p "$1"
	curl -sS -N --max-time 60 -o "$1/body" -D "$1/hdr" -w '%{http_code}' \
	    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
	    --data-binary "$STREAM" "$GW_URL/v1/chat/completions" >"$1/code" 2>/dev/null &
	CURLS+=($!)
}

chunks_at_least() {	# N DIR...: every DIR/body holds N chunks or more
	local n=$1 d
	shift
	for d; do
		[ "$(grep -c '^data: {' "$d/body" 2>/dev/null)" -ge "$n" ] || return 1
	done
}

rid_of() { tr -d '\r' <"$1/hdr" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p' | tail -n 1; }

# The gateway processes with an upstream request the mock is answering.
busy_procs() { gw_streaming_pids $(gw_binary_pids); }

# Rows of the key's killed requests, as "rid died cost" lines.
rows_of() {	# KEY-NAME
	admin usage --rows --key "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    print(d["request_id"], int(d["worker_died"]), d["cost_micro_usd"])'
}

# Every request id given has its worker_died row. Under CGI only a request
# reclaims: each poll makes one.
reclaimed() {	# KEY-NAME RID...
	local name=$1 rows r
	shift
	[ "$SERVER_KIND" != cgi ] || api "$POLLKEY" GET /billing/balance
	rows=$(rows_of "$name")
	for r; do
		grep -q "^$r 1 " <<<"$rows" || return 1
	done
}

TIMES=()	# seconds from kill to reclaim, every round of every front end
KILLS=0 KILLED_REQS=0 CURLS=() WORST=0 RECOVERIES=0

scenarios() {
	local k=$kind i j d dirs rids victims t0 secs rows out b name W F target
	local mine=()
	name=victim-$k
	create_key KEY --name "$name" --prepaid
	create_key PROBE --name "probe-$k" --prepaid
	POLLKEY=$KEY
	W=$(worst_of "$PROBE" "$STREAM")
	F=$(worst_of "$PROBE" "$SMALL")
	ok "$k: the worst cases are known (stream $W, small $F micro-USD)" \
	    test "$W" -gt 0 -a "$F" -gt 0
	WORST=$W
	for ((i = 1; i <= ITERS; i++)); do
		# The balance covers the streams and half a small request.
		target=$((STREAMS * W + F / 2))
		b=$(balance_of "$name" balance_micro_usd)
		[ "$b" = "$target" ] ||
		    admin adjust "$name" "$(usd $((target - b)))" --reason "t0850 round $i" >/dev/null
		if [ "$k" = apache ]; then
			# Idle processes beside the streams' (mod_fcgid spawns on demand).
			for ((j = 0; j < STREAMS + 2; j++)); do
				curl -sS -o /dev/null --max-time 30 -H "Authorization: Bearer $LLMGATE_MASTER_KEY" \
				    -H 'Content-Type: application/json' --data-binary "$WARM" \
				    "$GW_URL/v1/chat/completions" &
				CURLS+=($!)
			done
			wait "${CURLS[@]}"
		fi
		CURLS=() dirs=()
		for ((j = 1; j <= STREAMS; j++)); do
			d=$TMPDIR_T/$k/$i/$j
			stream "$d" "$KEY"
			dirs+=("$d")
		done
		if ! wait_until 30 chunks_at_least 15 "${dirs[@]}"; then
			fail "$k round $i: the streams did not run" "$(head -c 300 "${dirs[0]}/body")"
			kill "${CURLS[@]}" 2>/dev/null
			wait "${CURLS[@]}" 2>/dev/null
			continue
		fi
		rids=()
		for d in "${dirs[@]}"; do rids+=("$(rid_of "$d")"); done
		chat_as "$KEY" mock-k short '"max_tokens":5'
		is "$STATUS" 402 "$k round $i: while the streams run the key has no room ($STATUS)"
		victims=$(busy_procs)
		if ! ok "$k round $i: found the process(es) serving the streams: $(echo $victims)" test -n "$victims"; then
			kill "${CURLS[@]}" 2>/dev/null
			wait "${CURLS[@]}" 2>/dev/null
			continue
		fi
		kill -KILL $victims
		t0=$EPOCHREALTIME
		KILLS=$((KILLS + $(echo $victims | wc -w)))
		KILLED_REQS=$((KILLED_REQS + STREAMS))
		wait "${CURLS[@]}"
		# The web server reaped them; under nginx systemd would restart it.
		if [ "$k" = nginx ]; then
			wait_until 10 bash -c "! kill -0 $victims 2>/dev/null"
			restart_gateway
		fi
		if wait_until 10 reclaimed "$name" "${rids[@]}"; then
			secs=$(python3 -c "print('%.2f' % ($EPOCHREALTIME - $t0))")
			TIMES+=("$secs")
			mine+=("$secs")
			pass "$k round $i: both killed requests billed within $secs s"
		elif wait_until 30 reclaimed "$name" "${rids[@]}"; then
			# Killed inside Berkeley DB: the store needed recovery,
			# which the gateway ran by itself (no operator step).
			RECOVERIES=$((RECOVERIES + 1))
			secs=$(python3 -c "print('%.2f' % ($EPOCHREALTIME - $t0))")
			pass "$k round $i: the kill landed inside Berkeley DB; the store healed by itself and both killed requests were billed within $secs s"
		else
			fail "$k round $i: killed requests not reclaimed within 10 s" "$(rows_of "$name")"
		fi
		for d in "${dirs[@]}"; do
			if grep -q '^data: \[DONE\]' "$d/body"; then
				fail "$k round $i: a stream survived the kill ($d)"
			fi
		done
		chat_as "$KEY" mock-k short '"max_tokens":5'
		is "$STATUS" 200 "$k round $i: the next request is admitted at once"
		b=$(balance_of "$name" balance_micro_usd)
		ok "$k round $i: balance $b >= 0" test "$b" -ge 0
		ALLRIDS+=("${rids[@]}")
	done

	# The books of the key.
	rows=$TMPDIR_T/rows-$k.jsonl
	admin usage --rows --key "$name" >"$rows"
	out=$(python3 - "$rows" "$W" "${ALLRIDS[@]}" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
W, rids = int(sys.argv[2]), sys.argv[3:]
bad = []
for r in rids:
    mine = [d for d in rows if d["request_id"] == r]
    died = [d for d in mine if d["worker_died"]]
    if len(mine) != 1 or len(died) != 1:
        bad.append("%s: %d rows, %d worker_died" % (r, len(mine), len(died)))
        continue
    d = died[0]
    if not 0 < d["cost_micro_usd"] <= W:
        bad.append("%s: cost %d not in (0, %d]" % (r, d["cost_micro_usd"], W))
    if d["completion_tokens"] < 1 or not d["estimated"] or not d["stream"]:
        bad.append("%s: progress not billed: %s" % (r, d))
print("; ".join(bad))
EOF
)
	is "$out" "" "$k: every killed request has one worker_died row, 0 < cost <= reserved $W, with its streamed progress"
	diag "$k: costs of the killed requests (micro-USD, reserved $W each): $(python3 -c '
import json, sys
print(" ".join(str(json.loads(l)["cost_micro_usd"]) for l in sys.stdin if json.loads(l)["worker_died"]))' <"$rows")"
	admin ledger "$name" --json --limit 100000 >"$TMPDIR_T/ledger-$k.json"
	is "$(python3 - "$rows" "$TMPDIR_T/ledger-$k.json" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
led = json.load(open(sys.argv[2]))["data"]
debit = {}
for e in led:
    if e["type"] == "debit":
        debit[e["request_id"]] = debit.get(e["request_id"], 0) - e["amount_micro_usd"]
cost = {}
for d in rows:
    if d["cost_micro_usd"]:
        cost[d["request_id"]] = cost.get(d["request_id"], 0) + d["cost_micro_usd"]
print("ok" if debit == cost else "debits %s != costs %s" % (debit, cost))
EOF
)" ok "$k: ledger debits == the rows' costs, request by request"
	diag "$k: seconds from kill to reclaim, each round: ${mine[*]}"
	is "$(balance_of "$name" reserved_micro_usd)" 0 "$k: nothing stays reserved"
	out=$(admin check --json)
	is "$(jx 'd["problems"]' <<<"$out")" '[]' "$k: llmgate-admin check is clean"
	ALLRIDS=()
}

ALLRIDS=()
for_each_server "$CONF" scenarios

# --- llmgate-admin reclaim, with no gateway process left to do it ----------------
# A CGI process run by hand is killed mid-stream; nothing else runs.
diag "=== llmgate-admin reclaim ==="
create_key ORPHAN --name orphan --prepaid
admin topup orphan 1 >/dev/null
printf '%s' "$STREAM" >"$TMPDIR_T/orphan.req"
as_gw_user env -i PATH="$_lib_path" LLMGATE_CONFIG="$CONF" MOCK_API_KEY="$MOCK_API_KEY" \
    LLMGATE_MASTER_KEY="$LLMGATE_MASTER_KEY" \
    REQUEST_METHOD=POST REQUEST_URI=/v1/chat/completions CONTENT_TYPE=application/json \
    CONTENT_LENGTH=${#STREAM} HTTP_AUTHORIZATION="Bearer $ORPHAN" \
    "$LLMGATE" <"$TMPDIR_T/orphan.req" >"$TMPDIR_T/orphan.out" 2>"$TMPDIR_T/orphan.err" &
cgi=$!
mkdir -p "$TMPDIR_T/orphan" && ln -sf "$TMPDIR_T/orphan.out" "$TMPDIR_T/orphan/body"
ok "a CGI process streams" wait_until 30 chunks_at_least 15 "$TMPDIR_T/orphan"
victims=$(gw_binary_pids)	# the only gateway process now (the job is a subshell)
ok "found it: $(echo $victims)" test "$(echo $victims | wc -w)" = 1
kill -KILL $victims
wait "$cgi" 2>/dev/null
rid=$(tr -d '\r' <"$TMPDIR_T/orphan.out" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p' | head -n 1)
ok "it is killed holding its reservation ($(balance_of orphan reserved_micro_usd) micro-USD)" \
    test "$(balance_of orphan reserved_micro_usd)" -gt 0
# Killed inside Berkeley DB, the store needs recovery: llmgate-admin, alone
# on it, runs it by itself as it opens it.
out=$(admin reclaim --json)
is "$(jx 'd["reclaimed"]' <<<"$out")" 1 "llmgate-admin reclaim bills it"
is "$(jx '[(r["request_id"], r["worker_died"], r["key_name"]) for r in d["rows"]]' <<<"$out")" \
    "[[\"$rid\", true, \"orphan\"]]" "its row: the request, worker_died, the key"
cost=$(jx 'd["rows"][0]["cost_micro_usd"]' <<<"$out")
ok "billed $cost micro-USD: above zero, at most the reservation ($WORST)" \
    test "$cost" -gt 0 -a "$cost" -le "$WORST"
is "$(balance_of orphan reserved_micro_usd)" 0 "nothing stays reserved"
is "$(balance_of orphan balance_micro_usd)" $((1000000 - cost)) "balance = top-up - the cost"
like "$(admin reclaim)" "^reclaim: 0 reservations" "a second reclaim finds nothing"
out=$(admin check --json)
is "$(jx 'd["problems"]' <<<"$out")" '[]' "check is clean"

if [ "${#TIMES[@]}" -gt 0 ]; then
	diag "$(python3 -c '
import statistics, sys
t = sorted(float(x) for x in sys.argv[4:])
print("kills %s, killed requests %s, rounds reclaimed %d: max %.2f s, median %.2f s; "
    "rounds that needed recovery first: %s" % (sys.argv[1], sys.argv[2], len(t), t[-1],
    statistics.median(t), sys.argv[3]))' "$KILLS" "$KILLED_REQS" "$RECOVERIES" "${TIMES[@]}")"
fi
done_testing
