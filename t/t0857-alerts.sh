#!/bin/bash
# t0857-alerts.sh: spend and health alerts POSTed to [alert] webhooks (the
# mock's receiver, t/mock_webhook.py). Concurrent requests from several
# processes cross a key's budget warning line and then its budget: the
# webhook gets exactly one budget_warning and one budget_exceeded for that
# key (the period claimed once across all processes), with the secret
# header from the environment and never the key; a webhook answering 500
# three times gets the event on its fourth attempt; a prepaid key spending
# below balance_below gives one balance_low; a provider's breaker opening
# gives one breaker_open. A webhook that hangs never slows a request. A
# delivery process killed with SIGKILL leaves its payload to the next one.
# Under lighttpd (one process, threads), Apache mod_fcgid (many processes)
# and CGI (a process per request).
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0857
export LLMGATE_MASTER_KEY=sk-master-t0857-key
export ALERT_TOKEN=alert-token-t0857-secret
GW_PASSENV=ALERT_TOKEN
CONF=$TMPDIR_T/llmgate.ini
HANG=90		# s the dead webhook holds each POST (its timeout_s: 60)
N=24		# requests against the budget, 8 at a time
write_mock_gateway "$CONF" "budget_warn_percent = 1"
cat >>"$CONF" <<EOF
[provider down]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
breaker_failures = 2
breaker_failure_rate = 0
breaker_open_s = 600

[model mock-ok]
provider = mock
upstream = mock@first_byte_delay=0.2
input_price = 1
output_price = 10
max_tokens = 5

[model mock-slow]
provider = mock
upstream = mock@first_byte_delay=1
EOF
for kind in ${LLMGATE_SERVERS:-lighttpd apache cgi}; do
	for m in brk brk2; do
		printf '\n[model %s-%s]\nprovider = down\nupstream = %s-%s@status=500\ninput_price = 1\noutput_price = 1\n' \
		    "$m" "$kind" "$m" "$kind" >>"$CONF"
	done
done
cat >>"$CONF" <<EOF

[alert hook]
url = $MOCK_URL/_mock/webhook/hook
events = budget_warning, budget_exceeded, balance_low, breaker_open
balance_below = 0.0003
period_s = 3600
header = Authorization: Bearer env:ALERT_TOKEN
backoff_ms = 100

[alert flaky]
url = $MOCK_URL/_mock/webhook/flaky
events = budget_exceeded
attempts = 6
backoff_ms = 100

[alert dead]
url = $MOCK_URL/_mock/webhook/dead
events = budget_warning, budget_exceeded, balance_low, breaker_open
attempts = 1
timeout_s = 60
EOF
admin recover >/dev/null || bail "llmgate-admin recover failed"

# The delivery processes of this test (found by their spool path) end
# with it, hung ones included.
stop_deliveries() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "--deliver-alert $TMPDIR_T/" &&
		    kill "${p#/proc/}" 2>/dev/null
	done
	return 0
}
at_exit stop_deliveries

hooks() { curl -sS "$MOCK_URL/_mock/webhooks"; }
# count NAME EVENT SUBJECT-ERE: posts of EVENT to NAME about a subject matching ERE
count() {
	hooks | python3 -c '
import json, re, sys
name, ev, ere = sys.argv[1:4]
print(sum(1 for p in json.load(sys.stdin).get(name, [])
          if isinstance(p["body"], dict) and p["body"].get("event") == ev
          and re.search(ere, p["body"].get("subject", ""))))' "$@"
}
# pending NAME: spool files of alert NAME not yet delivered (nor given up)
pending() { ls "$TMPDIR_T/data/alerts/spool" 2>/dev/null | grep -c "^$1-.*\.json$"; }
no_pending() { [ "$(pending hook)" -eq 0 ] && [ "$(pending flaky)" -eq 0 ]; }

scenario() {
	local id times slow out
	# Modes per server: the flaky webhook fails its next 3 posts again.
	curl -sS -X POST -d "{\"flaky\":{\"fail\":3},\"dead\":{\"hang\":$HANG}}" \
	    "$MOCK_URL/_mock/webhooks/mode" >/dev/null
	create_key K --name "bud-$SERVER_KIND" --daily-budget 0.0005 || return
	id=$K_ID

	# mod_fcgid spawns processes only under load: slow requests first,
	# until several processes wait for the burst.
	if [ "$SERVER_KIND" = apache ]; then
		for i in 1 2 3 4 5 6; do
			[ "$(gw_worker_pids | wc -l)" -lt 3 ] || break
			seq 6 | xargs -P 6 -I{} curl -sS -o /dev/null --max-time 60 \
			    -H 'Content-Type: application/json' -H "Authorization: Bearer $LLMGATE_MASTER_KEY" \
			    --data-binary "$(chat_json mock-slow warm)" "$GW_URL/v1/chat/completions"
		done
	fi
	# One request settled first: every later one is past the warning
	# line (1%), however the burst's requests interleave.
	chat_as "$K" mock-ok hello
	is "$STATUS" 200 "$SERVER_KIND: the first request is served"
	# N requests, 8 at a time, against a budget of about 12 of them.
	times=$TMPDIR_T/times.$SERVER_KIND
	seq "$N" | xargs -P 8 -I{} curl -sS -o /dev/null --max-time 60 \
	    -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $K" \
	    -H 'Content-Type: application/json' \
	    --data-binary "$(chat_json mock-ok hello)" "$GW_URL/v1/chat/completions" >"$times"
	like "$(sort "$times" | awk '{print $1}' | uniq -c | tr '\n' ' ')" '200.*429' \
	    "$SERVER_KIND: $N concurrent requests: some served, the rest refused by the budget"
	slow=$(awk '$2 > 10' "$times" | wc -l)
	is "$slow" 0 "$SERVER_KIND: no request waited for the webhook that hangs ${HANG}s (slowest $(sort -k2 -n "$times" | tail -n 1 | cut -d' ' -f2)s)"

	wait_until 30 no_pending
	diag "$SERVER_KIND: $(grep -c "budget warning: key bud-$SERVER_KIND " "$SERVER_LOG") budget warnings from \
$(grep "budget warning: key bud-$SERVER_KIND " "$SERVER_LOG" | grep -o 'llmgate\[[0-9]*\]' | sort -u | wc -l) process(es)"
	[ "$SERVER_KIND" != apache ] ||
	    ok "apache: the warnings came from several processes" test "$(grep "budget warning: key bud-$SERVER_KIND " \
	    "$SERVER_LOG" | grep -o 'llmgate\[[0-9]*\]' | sort -u | wc -l)" -ge 2
	is "$(count hook budget_warning "^key:$id:")" 1 "$SERVER_KIND: one budget_warning for the key"
	is "$(count hook budget_exceeded "^key:$id:")" 1 "$SERVER_KIND: one budget_exceeded for the key"
	is "$(count flaky budget_exceeded "^key:$id:")" 4 "$SERVER_KIND: the flaky webhook got it on the 4th attempt (3 answered 500)"
	out=$(hooks | python3 -c '
import json, sys
key, kid, tok = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = json.load(sys.stdin)
ps = [p for p in d.get("hook", []) if isinstance(p["body"], dict)
      and p["body"].get("subject", "").startswith("key:%d:" % kid)]
b = [p["body"] for p in ps if p["body"]["event"] == "budget_exceeded"][0]
ok = (b["key"]["id"] == kid and b["key"]["prefix"] == key[:10] and
      b["agent"] != None and b["detail"]["budget_usd"] == "0.000500" and
      b["time"].endswith("Z") and b["alert"] == "hook" and bool(b["message"]))
auth = all(p["headers"].get("Authorization") == "Bearer " + tok for p in ps)
leak = any(key in json.dumps(p) for n in d for p in d[n])
print("%s %s %s" % (ok, auth, leak))' "$K" "$id" "$ALERT_TOKEN" 2>&1)
	is "$out" "True True False" "$SERVER_KIND: payload fields, the secret header, no key in any post"
	ok "$SERVER_KIND: the hung webhook was tried" \
	    test "$(count dead budget_warning "^key:$id:")" -ge 1

	# A prepaid key spending under balance_below: one balance_low.
	create_key P --name "pre-$SERVER_KIND" --prepaid || return
	admin topup "$P_ID" 0.0004 --reason test >/dev/null
	seq 10 | xargs -P 2 -I{} curl -sS -o /dev/null --max-time 60 -H "Authorization: Bearer $P" \
	    -H 'Content-Type: application/json' \
	    --data-binary "$(chat_json mock-ok hello)" "$GW_URL/v1/chat/completions"
	wait_until 30 no_pending
	is "$(count hook balance_low "^key:$P_ID:")" 1 "$SERVER_KIND: one balance_low for the prepaid key"

	# A deployment failing: its breaker opens once.
	seq 6 | xargs -P 3 -I{} curl -sS -o /dev/null --max-time 60 \
	    -H 'Content-Type: application/json' -H "Authorization: Bearer $LLMGATE_MASTER_KEY" \
	    --data-binary "$(chat_json "brk-$SERVER_KIND" hello)" "$GW_URL/v1/chat/completions"
	wait_until 30 eval '[ "$(count hook breaker_open "^down/brk-$SERVER_KIND@")" -ge 1 ]'
	wait_until 30 no_pending
	is "$(count hook breaker_open "^down/brk-$SERVER_KIND@")" 1 "$SERVER_KIND: one breaker_open for the deployment"

	# A delivery process killed mid-delivery leaves its spool file; the
	# next delivery process takes it over (no one holds its lock). The
	# orphans: the files on the killed deliverers' command lines (each
	# holds its own while its post hangs; a process sweeping another's
	# file is not killed, and that file is no orphan).
	out=$(dead_deliveries)
	ok "$SERVER_KIND: deliveries to the hung webhook are in progress" test -n "$out"
	python3 - $out >"$TMPDIR_T/orphans" <<'PYEOF'
import json, sys
for pid in sys.argv[1:]:
    try:
        argv = open("/proc/%s/cmdline" % pid, "rb").read().decode().split("\0")
        b = json.load(open(argv[argv.index("--deliver-alert") + 1]))
    except (OSError, ValueError, IndexError):
        continue
    print(b["event"], b["subject"])
PYEOF
	kill -9 $out 2>/dev/null
	ok "$SERVER_KIND: the killed deliverers leave $(wc -l <"$TMPDIR_T/orphans") payload(s) behind" \
	    test -s "$TMPDIR_T/orphans"
	wait_until 10 eval '[ -z "$(dead_deliveries)" ]'
	curl -sS -X POST -d '{}' "$MOCK_URL/_mock/webhooks/mode" >/dev/null
	seq 4 | xargs -P 2 -I{} curl -sS -o /dev/null --max-time 60 \
	    -H 'Content-Type: application/json' -H "Authorization: Bearer $LLMGATE_MASTER_KEY" \
	    --data-binary "$(chat_json "brk2-$SERVER_KIND" hello)" "$GW_URL/v1/chat/completions"
	# A later deliverer may already have swept an orphan up while the
	# webhook still hung (then its one attempt ends it .failed, kept):
	# none may be lost, and the sweep must have delivered some.
	ok "$SERVER_KIND: every orphaned payload (its process killed) was delivered, or kept .failed after its attempt" \
	    wait_until 90 accounted_dead "$TMPDIR_T/orphans"
	ok "$SERVER_KIND: a later process delivered orphaned payloads" \
	    test "$(accounted_dead "$TMPDIR_T/orphans" delivered)" -ge 1
}

# The delivery processes of the dead webhook still running.
dead_deliveries() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "--deliver-alert $TMPDIR_T/data/alerts/spool/dead-" &&
		    echo "${p#/proc/}"
	done
}
# accounted_dead FILE [delivered]: each "EVENT SUBJECT" line of FILE was
# answered 200 by the dead webhook or lies in the spool as .failed; with
# "delivered", print how many were answered 200.
accounted_dead() {
	hooks | python3 -c '
import glob, json, os, sys
want = {tuple(l.split(" ", 1)) for l in open(sys.argv[1]).read().splitlines() if l}
got = {(p["body"].get("event"), p["body"].get("subject"))
       for p in json.load(sys.stdin).get("dead", [])
       if p["answered"] == 200 and isinstance(p["body"], dict)}
failed = set()
for f in glob.glob(os.path.join(sys.argv[2], "dead-*.json.failed")):
    try:
        b = json.load(open(f))
        failed.add((b["event"], b["subject"]))
    except (OSError, ValueError, KeyError):
        pass
if len(sys.argv) > 3:
    print(len(want & got))
else:
    sys.exit(not want <= (got | failed))' "$1" "$TMPDIR_T/data/alerts/spool" ${2:+"$2"}
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-lighttpd apache cgi} for_each_server "$CONF" scenario
done_testing
