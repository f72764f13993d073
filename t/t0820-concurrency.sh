#!/bin/bash
# t0820-concurrency.sh: the books under load through Apache mod_fcgid (one
# request per process, many processes on one Berkeley DB environment).
#
# 1. 130 concurrent chat requests (plain and streamed) from two prepaid keys
#    with small balances, both of one agent with a small daily budget: every
#    answer is 200, 402 or 429; afterwards the ledger debits, the usage costs,
#    the agent's spend and the mock's reported tokens times the prices all
#    agree to the micro-dollar, no balance is below zero, no budget is
#    overrun, every 200 has its debit under its request id, and
#    llmgate-admin check finds no problem.
# 2. A gateway process is SIGKILLed in the middle of a stream while 40
#    others run: the others finish, new requests are served within seconds
#    (the failchk watchdog frees whatever the dead process held), every
#    request that completed has its record, and the killed one is billed by
#    a reclaim.
# With T0820_IN_LIBRARY=1 (t0825-in-library-load.sh) the gateway is
# t/llmgate-fault and the kill also makes a worker die inside Berkeley DB's
# own code: the store needs recovery under load, and must heal by itself.
. "$(dirname "$0")/lib.sh"

setup_tmp
if [ -n "${T0820_IN_LIBRARY:-}" ]; then
	LLMGATE=${LLMGATE_FAULT:-$top_builddir/t/llmgate-fault}
	[ -x "$LLMGATE" ] || bail "$LLMGATE is missing: make t/llmgate-fault (make check builds it)"
	export LLMGATE_FAULT_DIR=$TMPDIR_T/faults
	GW_PASSENV=LLMGATE_FAULT_DIR
	mkdir -p "$LLMGATE_FAULT_DIR"
	chown "$GW_USER:$GW_GROUP" "$LLMGATE_FAULT_DIR"
fi
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0820
export LLMGATE_MASTER_KEY=sk-master-t0820-key
CONF=$TMPDIR_T/llmgate.ini
IN=12345000 OUT=37500000		# mock-a: 12.345 and 37.5 USD per 1M tokens
BUDGET=24000				# tier TC: 0.024 USD per agent per day
N=130

write_mock_gateway "$CONF" "default_tier = T1" "reservation_ttl = 60"
cat >>"$CONF" <<EOF
[model mock-a]
provider = mock
upstream = mock-a-up
input_price = 12.345
output_price = 37.5
rpm = 100000

[tier T1]
rpm = 0

[tier TC]
daily_budget = 0.024
EOF

cost() { echo $(( ($1 * IN + $2 * OUT + 999999) / 1000000 )); }

# fire DIR KEY BODY: one request in the background; DIR/code, DIR/hdr, DIR/body.
fire() {
	mkdir -p "$1"
	curl -sS -N --max-time 120 -o "$1/body" -D "$1/hdr" -w '%{http_code}' \
	    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
	    --data-binary "$3" "$GW_URL/v1/chat/completions" >"$1/code" 2>"$1/err" &
	FIRED+=($!)
}

rid_of() { tr -d '\r' <"$1/hdr" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p' | tail -n 1; }

start_apache "$CONF"

# --- 1. The books balance under load -------------------------------------------

create_key k1 --name crowd-1 --agent crowd --tier TC --prepaid
create_key k2 --name crowd-2 --agent crowd --tier TC --prepaid
ok "topup crowd-1 0.003" admin topup crowd-1 0.003
ok "topup crowd-2 0.05" admin topup crowd-2 0.05
mock_clear

PLAIN='{"model":"mock-a","max_tokens":5,"messages":[{"role":"user","content":"hello MOCK{first_byte_delay=0.3}"}]}'
STREAM='{"model":"mock-a","max_tokens":5,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello MOCK{delay=0.1}"}]}'
FIRED=()
t0=$EPOCHREALTIME
for ((i = 1; i <= N; i++)); do
	key=$k1
	[ $((i % 2)) -eq 0 ] && key=$k2
	body=$PLAIN
	[ $((i % 3)) -eq 0 ] && body=$STREAM
	fire "$TMPDIR_T/r1/$i" "$key" "$body"
done
wait "${FIRED[@]}"
secs=$(python3 -c "print('%.1f' % ($EPOCHREALTIME - $t0))")
diag "$N requests took $secs s"

n200=0 n402=0 n429=0 nother=0 others="" okrids=() badstream=0
for ((i = 1; i <= N; i++)); do
	d=$TMPDIR_T/r1/$i
	case $(cat "$d/code") in
	200)	n200=$((n200 + 1))
		okrids+=("$(rid_of "$d")")
		if [ $((i % 3)) -eq 0 ] && ! grep -q 'data: \[DONE\]' "$d/body"; then
			badstream=$((badstream + 1))
		fi ;;
	402)	n402=$((n402 + 1))
		grep -q '"code":"insufficient_balance"' "$d/body" || others+=" $i:402-without-code" ;;
	429)	n429=$((n429 + 1))
		grep -q '"code":"budget_exceeded"' "$d/body" || others+=" $i:429-$(jx 'd["error"]["code"]' <"$d/body")" ;;
	*)	nother=$((nother + 1))
		others+=" $i:$(cat "$d/code"):$(head -c 200 "$d/body" "$d/err" | tr '\n' ' ')" ;;
	esac
done
diag "200: $n200, 402: $n402, 429: $n429, other: $nother"
is "$((n200 + n402 + n429))" "$N" "every answer is 200, 402 or 429"
is "$others" "" "every 402 is insufficient_balance, every 429 budget_exceeded"
ok "some requests were served ($n200)" test "$n200" -ge 20
ok "some were refused for the balance ($n402)" test "$n402" -ge 1
ok "some were refused for the agent's budget ($n429)" test "$n429" -ge 1
is "$badstream" 0 "every 200 stream ended with [DONE]"

# Upstream view: what the mock reported, priced here.
mock_log >"$TMPDIR_T/mock1.json"
up=$(jx '[e for e in d["log"] if e["model"] == "mock-a-up"]' <"$TMPDIR_T/mock1.json")
nup=$(jx 'len(d)' <<<"$up")
expected=0
while read -r p c; do
	expected=$((expected + $(cost "$p" "$c")))
done < <(jx '"\n".join("%d %d" % (e["usage"]["prompt_tokens"], e["usage"]["completion_tokens"]) for e in d)' <<<"$up")
is "$nup" "$n200" "the upstream saw exactly the admitted requests"
is "$(jx 'len([e for e in d if e["usage"] is None])' <<<"$up")" 0 "the mock reported usage for each"

# The store's view.
u=$(admin usage --json --group-by key)
ucost=$(jx 'sum(r["cost_micro_usd"] for r in d["data"] if r["group"].startswith("crowd-"))' <<<"$u")
ureq=$(jx 'sum(r["requests"] - r["errors"] for r in d["data"] if r["group"].startswith("crowd-"))' <<<"$u")
l1=$(admin ledger crowd-1 --json --limit 100000)
l2=$(admin ledger crowd-2 --json --limit 100000)
debits=$(( $(jx '-sum(e["amount_micro_usd"] for e in d["data"] if e["type"] == "debit")' <<<"$l1") + \
    $(jx '-sum(e["amount_micro_usd"] for e in d["data"] if e["type"] == "debit")' <<<"$l2") ))
ndebits=$(( $(jx 'len([e for e in d["data"] if e["type"] == "debit"])' <<<"$l1") + \
    $(jx 'len([e for e in d["data"] if e["type"] == "debit"])' <<<"$l2") ))
api "$k1" GET /usage
spent=$(jx 'd["budgets"]["agent_spent_today_micro_usd"]' <<<"$BODY")
is "$(jx 'd["budgets"]["agent_daily_micro_usd"]' <<<"$BODY")" $BUDGET "the agent's budget is $BUDGET"
diag "usage cost $ucost, ledger debits $debits, agent spent $spent, expected from the mock $expected"
is "$ucost" "$expected" "usage cost == the mock's tokens times the prices"
is "$debits" "$ucost" "sum of ledger debits == sum of usage costs"
is "$spent" "$ucost" "the agent's spend == sum of usage costs"
ok "the agent's spend $spent did not overrun its budget $BUDGET" test "${spent:-99999999}" -le $BUDGET
is "$ureq" "$n200" "usage rows with success == the 200 answers"
is "$ndebits" "$n200" "one ledger debit per 200 answer"
missing=$(python3 - "$l1" "$l2" "${okrids[@]}" <<'EOF'
import json, sys
rids = set()
for doc in sys.argv[1:3]:
    rids |= {e["request_id"] for e in json.loads(doc)["data"] if e["type"] == "debit"}
want = [r for r in sys.argv[3:]]
print(" ".join(r for r in want if r not in rids) or "")
EOF
)
is "$missing" "" "every 200's X-Request-Id has its ledger debit"
for key in crowd-1 crowd-2; do
	b=$(admin balance "$key" --json)
	ok "$key: balance $(jx 'd["balance_micro_usd"]' <<<"$b") >= 0" \
	    test "$(jx 'd["balance_micro_usd"]' <<<"$b")" -ge 0
	is "$(jx 'd["balance_micro_usd"] == d["credited_micro_usd"] - d["debited_micro_usd"]' <<<"$b")" true \
	    "$key: balance == credited - debited"
	is "$(jx 'd["reserved_micro_usd"]' <<<"$b")" 0 "$key: nothing left reserved"
done
out=$(admin check --json)
is "$?" 0 "check exits 0 after the load"
is "$(jx 'd["problems"]' <<<"$out")" '[]' "check: no problems"
is "$(jx 'd["ledger_debits_micro_usd"]' <<<"$out")" "$debits" "check: the same debits"
unlike "$(grep -iE 'deadlock|panic|run recovery|DB_RUNRECOVERY' "$SERVER_LOG")" '.' \
    "no deadlock failure or panic in the error log"

# --- 2. A worker SIGKILLed mid-stream under load ---------------------------------

create_key k3 --name killer-load
mock_clear
SLOW='{"model":"mock-a","max_tokens":30,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"slow MOCK{chunks=24,delay=0.25}"}]}'
FIRED=()
for ((i = 1; i <= 40; i++)); do
	fire "$TMPDIR_T/r2/$i" "$k3" "$SLOW"
done
# Wait until most streams run, then kill one process that is serving one.
streams_running() {	# N: at least N upstream requests in progress
	[ "$(mock_log | jx 'len([e for e in d["log"] if not e["done"]])')" -ge "$1" ]
}
ok "20 streams under way at once" wait_until 20 streams_running 20 ||
    diag "$(mock_log | jx '[(round(e["t"] % 100, 2), round(e.get("t_end", 0) % 100, 2)) for e in d["log"]]')"
pids=$(gw_worker_pids)
ok "several gateway processes under Apache ($(echo $pids | wc -w))" test "$(echo $pids | wc -w)" -ge 2
# The victim: a process whose upstream request the mock is still answering.
victim=$(gw_streaming_pids $pids | head -n 1)
ok "found a gateway process in the middle of a stream ($victim)" test -n "$victim"
[ -n "$victim" ] || victim=$(echo $pids | awk '{print $1}')
if [ -n "${T0820_IN_LIBRARY:-}" ]; then
	# The next worker into usage.db's comparison dies there.
	touch "$LLMGATE_FAULT_DIR/in-library"
	chown "$GW_USER" "$LLMGATE_FAULT_DIR/in-library"
fi
kill -KILL "$victim"
diag "SIGKILLed gateway process $victim"
# New requests after the kill are served within seconds (mod_fcgid may
# queue them until a stream, 6 s long, frees a process): each one's time
# as curl, the process that reads the socket, measured it (time_total: from
# its connect to the end of the answer; a lock left by the dead process
# would hold one until failchk). A clock in this shell would also count
# the start of ten curls on a loaded machine.
FIRED2=()
for ((i = 1; i <= 10; i++)); do
	mkdir -p "$TMPDIR_T/r3/$i"
	curl -sS --max-time 30 -o "$TMPDIR_T/r3/$i/body" -D "$TMPDIR_T/r3/$i/hdr" \
	    -w '%{http_code}%{stderr}%{time_total}' \
	    -H "Authorization: Bearer $k3" -H 'Content-Type: application/json' \
	    --data-binary '{"model":"mock-a","max_tokens":5,"messages":[{"role":"user","content":"after"}]}' \
	    "$GW_URL/v1/chat/completions" >"$TMPDIR_T/r3/$i/code" 2>"$TMPDIR_T/r3/$i/time" &
	FIRED2+=($!)
done
wait "${FIRED2[@]}"
wait "${FIRED[@]}"
# A kill that lands while the victim is inside Berkeley DB's own code (a few
# in a hundred) leaves the environment needing recovery: every process
# leaves it and the first one alone recovers it (t0870). Keyed requests get
# 503 store_unavailable meanwhile, and processes caught inside the library
# exit, cutting their streams; nothing that completed may lose its row.
inlib=0
[ -e "$TMPDIR_T/data/needs-recovery" ] ||
    grep -q 'the environment needs recovery' "$SERVER_LOG" 2>/dev/null && inlib=1
[ -z "${T0820_IN_LIBRARY:-}" ] || is "$inlib" 1 "the fault point made the store need recovery"
# Ready, steadily: readiness answered 200 five times in a row (under
# mod_fcgid each answer may come from another process).
ready() {
	local i
	for i in 1 2 3 4 5; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$GW_URL/health/readiness")" = 200 ] || return 1
		sleep 0.2
	done
}
n=0 refused=0 after=0
for ((i = 1; i <= 10; i++)); do
	case $(cat "$TMPDIR_T/r3/$i/code") in
	200) n=$((n + 1)) ;;
	503) grep -q '"store_unavailable"' "$TMPDIR_T/r3/$i/body" && refused=$((refused + 1)) ;;
	esac
	after=$(python3 -c 'import sys; print(max(float(x) for x in sys.argv[1:]))' \
	    "$after" "$(tail -c 20 "$TMPDIR_T/r3/$i/time" | grep -oE '[0-9.]+$' || echo 99)")
done
done_n=0 cut=0 okrids=()
for ((i = 1; i <= 40; i++)); do
	d=$TMPDIR_T/r2/$i
	if [ "$(cat "$d/code")" = 200 ] && grep -q 'data: \[DONE\]' "$d/body"; then
		done_n=$((done_n + 1))
		okrids+=("$(rid_of "$d")")
	else
		cut=$((cut + 1))
	fi
done
for ((i = 1; i <= 10; i++)); do
	[ "$(cat "$TMPDIR_T/r3/$i/code")" = 200 ] && okrids+=("$(rid_of "$TMPDIR_T/r3/$i")")
done
diag "streams completed: $done_n, cut: $cut; new requests: $n answered 200, $refused refused 503"
ok "each new request within 20 s (the slowest took $after s)" \
    python3 -c 'import sys; sys.exit(float(sys.argv[1]) >= 20)' "$after"
if [ "$inlib" = 1 ]; then
	diag "the kill landed inside Berkeley DB: the store recovers by itself"
	is "$((n + refused))" 10 "in-library kill: every new request answered 200 or 503 store_unavailable"
	ok "in-library kill: the victim's stream was cut ($cut), the rest completed ($done_n)" \
	    test "$cut" -ge 1 -a "$((cut + done_n))" -eq 40
	ok "in-library kill: the store healed by itself within 60 s" \
	    wait_until 60 ready
	# Rows of completed requests: in the store, the fallback file, or a
	# LOST-STORE line (none may be missing).
	missing=$(python3 - "$TMPDIR_T" "${okrids[@]}" 3< <(admin usage --rows --key killer-load 2>/dev/null) <<'EOF'
import glob, json, os, re, sys
top, want = sys.argv[1], sys.argv[2:]
have = {json.loads(l)["request_id"] for l in os.fdopen(3) if l.strip()}
for f in glob.glob(os.path.join(top, "data", "usage-fallback.jsonl*")):
    have |= {json.loads(l)["request_id"] for l in open(f) if l.strip()}
for f in glob.glob(os.path.join(top, "**", "*.log"), recursive=True):
    for line in open(f, errors="replace"):
        m = re.search(r"LOST-STORE row=(\{.*\})\s*$", line)
        if m:
            have.add(json.loads(m.group(1))["request_id"])
print(" ".join(r for r in want if r not in have))
EOF
)
	worker_died() { [ "$(admin usage --rows --key killer-load | python3 -c '
import json, sys
print(sum(json.loads(l)["worker_died"] for l in sys.stdin))')" -ge 1 ]; }
	is "$missing" "" "in-library kill: every completed request has its row (no committed record lost)"
	ok "in-library kill: the killed stream is billed once healed (worker_died)" \
	    wait_until 30 worker_died
	ok "in-library kill: the store stayed healed" ready
else
	is "$n" 10 "10 new requests after the kill all answered 200"
	is "$cut" 1 "exactly the victim's stream was cut"
	ok "the other streams completed ($done_n >= 39)" test "$done_n" -ge 39
	l3=$(admin ledger killer-load --json --limit 100000)
	missing=$(python3 - "$l3" "${okrids[@]}" <<'EOF'
import json, sys
rids = {e["request_id"] for e in json.loads(sys.argv[1])["data"] if e["type"] == "debit"}
print(" ".join(r for r in sys.argv[2:] if r not in rids) or "")
EOF
)
	is "$missing" "" "every completed request has its ledger debit (no committed record lost)"
	# The killed stream is billed by a reclaim (t0850): its debit comes too.
	debits_are() {
		[ "$(admin ledger killer-load --json --limit 100000 |
		    jx 'len([e for e in d["data"] if e["type"] == "debit"])')" = "$1" ]
	}
	ok "one debit per completed request, and one for the killed stream" \
	    wait_until 10 debits_are "$((done_n + 10 + cut))"
	is "$(admin usage --rows --key killer-load | python3 -c '
import json, sys
print(sum(json.loads(l)["worker_died"] for l in sys.stdin))')" "$cut" "the killed stream's row is flagged worker_died"
	l3=$(admin ledger killer-load --json --limit 100000)
	u=$(admin usage --json --group-by key --key killer-load)
	is "$(jx 'd["total"]["cost_micro_usd"]' <<<"$u")" "$(jx '-sum(e["amount_micro_usd"] for e in d["data"] if e["type"] == "debit")' <<<"$l3")" \
	    "killer-load: usage cost == its debits"
fi
out=$(admin check --json)
is "$(jx 'd["problems"]' <<<"$out")" '[]' "check after the kill: no problems"
api "$LLMGATE_MASTER_KEY" GET /health/readiness
is "$STATUS" 200 "readiness after the kill"

done_testing
