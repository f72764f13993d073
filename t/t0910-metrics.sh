#!/bin/bash
# t0910-metrics.sh: GET /metrics, one view of every gateway process. Under
# Apache mod_fcgid (many one-request processes), lighttpd, nginx and CGI
# (a process per request): requests of
# every kind (chat streamed and not, embeddings, refused with 429 by a
# key's rpm and with 402 by an empty prepaid balance, failed upstream with
# 503) sent concurrently so that several processes serve them, then one
# scrape: llm_requests_total equals the usage rows label set by label set,
# the histograms' _count equal the rows, tokens and llm_cost_usd_total
# equal the rows' sums exactly, errors (4xx and 5xx, as llmgate-admin usage
# counts them) and the gateway's own 429s are counted apart, and `promtool check metrics` passes. 200 concurrent
# requests lose no increment. A process SIGKILLed mid-stream does not leave
# its request in flight, and its reclaimed row is counted once. The guard:
# 401 without a key, 403 with a client key, 200 with metrics_key or the
# master key, and without a key from an address of metrics_allow. The
# shipped contrib/prometheus rules pass `promtool check rules`, the scrape
# config `promtool check config`, and the Grafana dashboard parses and uses
# only metric names /metrics exposes.
. "$(dirname "$0")/lib.sh"

# promtool (Debian package prometheus): installed here when missing, as root.
if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	bash "$top_srcdir/t/setup-deps.sh" >&2
fi
command -v promtool >/dev/null 2>&1 || bail "promtool is missing: run t/setup-deps.sh as root (Debian package prometheus)"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0910
export LLMGATE_MASTER_KEY=sk-master-t0910-key
export LLMGATE_METRICS_KEY=sk-metrics-t0910-scraper-key
export GW_PASSENV=LLMGATE_METRICS_KEY
CONF=$TMPDIR_T/llmgate.ini
CONF_ALLOW=$TMPDIR_T/llmgate-allow.ini
N_CONC=200	# concurrent requests that must all be counted

write_mock_gateway "$CONF" "metrics_key = env:LLMGATE_METRICS_KEY" "default_tier = T1"
cat >>"$CONF" <<EOF
[model mock-a]
provider = mock
upstream = mock-a-up
input_price = 12.345
output_price = 37.5

[model mock-err]
provider = mock
upstream = mock-err-up@status=503
input_price = 1
output_price = 2

[model mock-slow]
provider = mock
upstream = mock-slow-up@delay=0.5,chunks=200
input_price = 1
output_price = 2

[model mock-emb]
provider = mock
upstream = mock-emb-up
input_price = 0.02

[tier T1]
rpm = 0

[tier TB]
daily_budget = 1

[agent budgeted]
tier = TB
EOF
sed 's/^metrics_key = .*/&\nmetrics_allow = 10.0.0.0\/8, 127.0.0.1, ::1/' "$CONF" >"$CONF_ALLOW"

scrape() {	# [KEY]: the exposition (the metrics key by default)
	curl -sS --max-time 30 -H "Authorization: Bearer ${1:-$LLMGATE_METRICS_KEY}" "$GW_URL/metrics"
}

# metric FILE EXPR: a Python expression over m, the samples of the
# exposition FILE as {(name, frozenset of (label, value)): float}, with
# helpers sum_of(name, **labels) and names (every metric name).
metric() {
	python3 - "$1" "$2" <<'PY'
import re, sys
m = {}
rx = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
lx = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    g = rx.match(line)
    if not g:
        print("bad line: %r" % line)
        sys.exit(1)
    labels = frozenset(lx.findall(g.group(2) or ""))
    m[(g.group(1), labels)] = float(g.group(3))
names = {k[0] for k in m}
def sum_of(name, **want):
    return sum(v for (n, l), v in m.items() if n == name and all((k, w) in l for k, w in want.items()))
v = eval(sys.argv[2])
print(v if isinstance(v, str) else repr(v))
PY
}

# compare FILE: the exposition against every usage row; prints "ok" or
# the differences. Rows: admin usage --rows (the store's record) and the
# rows in the fallback file: a CGI process that could not open the store
# in time (40 starting at once under ASan did) serves the master key and
# writes its row there, for llmgate-admin replay; counted all the same.
all_rows() {
	admin usage --rows --to "$(( $(date +%s) + 3600 ))"
	cat "$TMPDIR_T/data/usage-fallback.jsonl" 2>/dev/null
}
compare() {
	all_rows >"$TMPDIR_T/rows.jsonl"
	python3 - "$1" "$TMPDIR_T/rows.jsonl" <<'PY'
import collections, json, re, sys
from decimal import Decimal
m = collections.defaultdict(Decimal)
rx = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
lx = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    g = rx.match(line.rstrip("\n"))
    lab = dict(lx.findall(g.group(2) or ""))
    key = (lab.get("route"), lab.get("provider"), lab.get("model"), lab.get("status"), lab.get("agent"))
    name = g.group(1)
    if name == "llm_tokens_total":
        name += ":" + lab["type"]
    if name.endswith("_bucket"):
        continue
    m[(name, key)] += Decimal(g.group(3))
want = collections.defaultdict(Decimal)
n = 0
for line in open(sys.argv[2]):
    r = json.loads(line)
    n += 1
    key = (r["route"], r["provider"] or "", r["served"] or r["requested"], str(r["status"]), r["agent"])
    want[("llm_requests_total", key)] += 1
    want[("llm_request_duration_seconds_count", key)] += 1
    want[("llm_requests_errors_total", key)] += r["status"] >= 400
    want[("rate_limit_requests_total", key)] += r["status"] == 429 and r["attempts"] == 0
    want[("llm_tokens_total:prompt", key)] += r["prompt_tokens"]
    want[("llm_tokens_total:completion", key)] += r["completion_tokens"]
    want[("llm_tokens_total:cached", key)] += r["cached_tokens"]
    want[("llm_cost_usd_total", key)] += Decimal(r["cost_micro_usd"]) / 1000000
    if r["stream"] and r["status"] == 200:
        want[("llm_time_to_first_token_seconds_count", key)] += 1
bad = []
for k in set(want) | {k for k in m if k[0] in {w[0] for w in want}}:
    if m.get(k, 0) != want.get(k, 0):
        bad.append("%s %s: metrics %s, rows %s" % (k[0], k[1], m.get(k, 0), want.get(k, 0)))
print("ok %d" % n if not bad else "\n".join(sorted(bad)[:20]))
PY
}

# fire TAG COUNT PARALLEL: COUNT requests from $TMPDIR_T/TAG.args (one
# curl argument list a line, cycled), PARALLEL at once; statuses in TAG.st.
fire() {
	local tag=$1 n=$2 par=$3
	python3 - "$TMPDIR_T/$tag.args" "$n" "$par" "$GW_URL" >"$TMPDIR_T/$tag.st" <<'PY'
import shlex, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
n, par, url = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def one(i):
    args = shlex.split(lines[i % len(lines)])
    path = args.pop(0)
    out = subprocess.run(["curl", "-sS", "-N", "--max-time", "120", "-o", "/dev/null",
                          "-w", "%{http_code}"] + args + [url + path],
                         capture_output=True, text=True)
    return out.stdout.strip()
with ThreadPoolExecutor(par) as ex:
    for s in ex.map(one, range(n)):
        print(s)
PY
}

summary() { sort "$TMPDIR_T/$1.st" | uniq -c | awk '{ printf "%s%s*%s", sep, $1, $2; sep = " " }'; }

scenario() {
	local k=$SERVER_KIND out procs pid t0 rid

	# The guard.
	api "" GET /metrics
	is "$STATUS $(jx 'd["error"]["code"]' <<<"$BODY")" "401 missing_api_key" "$k: /metrics without a key: 401"
	api "$CLIENT" GET /metrics
	is "$STATUS $(jx 'd["error"]["type"]' <<<"$BODY")" "403 permission_error" "$k: /metrics with a client key: 403"
	api sk-not-a-key GET /metrics
	is "$STATUS" 401 "$k: /metrics with a wrong key: 401"
	api "$LLMGATE_METRICS_KEY" GET /metrics
	is "$STATUS" 200 "$k: /metrics with metrics_key: 200"
	is "$(hdr Content-Type)" "text/plain; version=0.0.4; charset=utf-8" "$k: the text exposition's content type"
	api "$LLMGATE_MASTER_KEY" GET /metrics
	is "$STATUS" 200 "$k: /metrics with the master key: 200"

	# Every kind of request, concurrently (several mod_fcgid processes).
	{
		for i in 1 2 3 4 5; do
			echo "/v1/chat/completions -H 'Authorization: Bearer $LLMGATE_MASTER_KEY' -H 'Content-Type: application/json' --data-binary '{\"model\":\"mock-a\",\"messages\":[{\"role\":\"user\",\"content\":\"plain $i\"}]}'"
			echo "/v1/chat/completions -H 'Authorization: Bearer $CLIENT' -H 'Content-Type: application/json' --data-binary '{\"model\":\"mock-a\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"stream $i\"}]}'"
			echo "/v1/embeddings -H 'Authorization: Bearer $CLIENT' -H 'Content-Type: application/json' --data-binary '{\"model\":\"mock-emb\",\"input\":\"embed $i\"}'"
			echo "/v1/chat/completions -H 'Authorization: Bearer $LIMITED' -H 'Content-Type: application/json' --data-binary '{\"model\":\"mock-a\",\"messages\":[{\"role\":\"user\",\"content\":\"limited $i\"}]}'"
			echo "/v1/chat/completions -H 'Authorization: Bearer $EMPTY' -H 'Content-Type: application/json' --data-binary '{\"model\":\"mock-a\",\"messages\":[{\"role\":\"user\",\"content\":\"empty $i\"}]}'"
			echo "/v1/chat/completions -H 'Authorization: Bearer $CLIENT' -H 'Content-Type: application/json' --data-binary '{\"model\":\"mock-err\",\"messages\":[{\"role\":\"user\",\"content\":\"fail $i\"}]}'"
			# Held 2 s upstream: mod_fcgid needs more processes meanwhile.
			echo "/v1/chat/completions -H 'Authorization: Bearer $LLMGATE_MASTER_KEY' -H 'Content-Type: application/json' --data-binary '{\"model\":\"mock-a\",\"messages\":[{\"role\":\"user\",\"content\":\"slow $i MOCK{first_byte_delay=2}\"}]}'"
		done
	} >"$TMPDIR_T/mix.args"
	fire mix 70 14
	out=$(summary mix)
	like "$out" '[0-9]+\*200' "$k: the mix: some served ($out)"
	like "$out" '[0-9]+\*402' "$k: the mix: some refused 402 (empty prepaid balance)"
	like "$out" '[0-9]+\*429' "$k: the mix: some refused 429 (rpm 2)"
	like "$out" '[0-9]+\*5[0-9][0-9]' "$k: the mix: some failed upstream"
	if [ "$k" = apache ]; then
		procs=$(gw_worker_pids | wc -l)
		ok "$k: $procs mod_fcgid processes served it" test "$procs" -ge 2
	fi
	scrape >"$TMPDIR_T/$k.mix.prom"
	out=$(promtool check metrics <"$TMPDIR_T/$k.mix.prom" 2>&1)
	is "$?" 0 "$k: promtool check metrics passes" || diag "$out"
	is "$(compare "$TMPDIR_T/$k.mix.prom")" "ok $(all_rows | wc -l)" \
	    "$k: every counter equals the usage rows, label set by label set (requests, errors, 429, tokens, cost, histogram counts)"
	is "$(metric "$TMPDIR_T/$k.mix.prom" 'int(sum_of("llm_requests_total"))') $(metric "$TMPDIR_T/$k.mix.prom" 'int(sum_of("llm_requests_errors_total"))')" \
	    "$(admin usage --json --to $(( $(date +%s) + 3600 )) | jx '"%d %d" % (d["total"]["requests"], d["total"]["errors"])')" \
	    "$k: llm_requests_total and llm_requests_errors_total = llmgate-admin usage --json's requests and errors"
	is "$(metric "$TMPDIR_T/$k.mix.prom" '"%.6f" % sum_of("llm_cost_usd_total")')" \
	    "$(admin usage --json --to $(( $(date +%s) + 3600 )) | jx 'd["total"]["cost_usd"]')" \
	    "$k: llm_cost_usd_total = llmgate-admin usage --json's cost"
	is "$(metric "$TMPDIR_T/$k.mix.prom" 'int(sum_of("llm_requests_total", route="embeddings"))') $(metric "$TMPDIR_T/$k.mix.prom" 'int(sum_of("llm_time_to_first_token_seconds_count")) >= 5')" \
	    "$(( 10 * ${ROUND:-1} )) True" "$k: embeddings counted; streams in the time-to-first-token histogram"
	like "$(metric "$TMPDIR_T/$k.mix.prom" 'sum_of("llm_budget_spent_ratio", agent="budgeted")')" '^0\.[0-9]*[1-9]' \
	    "$k: llm_budget_spent_ratio of agent budgeted (spent today / 1 USD)"
	is "$(metric "$TMPDIR_T/$k.mix.prom" '(sum_of("llm_cache_hits_total"), sum_of("llm_security_violations_total"), sum_of("llmgate_store_up"), sum_of("llmgate_metrics_up"))')" \
	    "(0.0, 0.0, 1.0, 1.0)" "$k: cache and guardrails at 0, store and metrics file up"
	ROUND=$(( ${ROUND:-1} + 1 ))

	# N_CONC at once: not one increment lost.
	printf '%s\n' "/v1/chat/completions -H 'Authorization: Bearer $LLMGATE_MASTER_KEY' -H 'Content-Type: application/json' --data-binary '{\"model\":\"mock-a\",\"messages\":[{\"role\":\"user\",\"content\":\"many\"}]}'" >"$TMPDIR_T/conc.args"
	local before after
	before=$(metric <(scrape) 'int(sum_of("llm_requests_total"))')
	fire conc "$N_CONC" 40
	is "$(summary conc)" "$N_CONC*200" "$k: $N_CONC concurrent requests served"
	scrape >"$TMPDIR_T/$k.conc.prom"
	after=$(metric "$TMPDIR_T/$k.conc.prom" 'int(sum_of("llm_requests_total"))')
	is "$((after - before))" "$N_CONC" "$k: llm_requests_total grew by exactly $N_CONC"
	is "$(compare "$TMPDIR_T/$k.conc.prom" | cut -d' ' -f1)" ok "$k: and still equals the usage rows label set by label set"
	is "$(metric "$TMPDIR_T/$k.conc.prom" 'int(sum_of("llm_request_duration_seconds_count") - sum_of("llm_requests_total"))')" 0 \
	    "$k: the duration histogram counts every request"

	# The worker gauges: idle now, nothing in flight.
	is "$(metric "$TMPDIR_T/$k.conc.prom" 'int(sum_of("llm_requests_in_flight"))')" 0 "$k: nothing in flight after the load"
	ok "$k: busy workers: the scrape's own ($(metric "$TMPDIR_T/$k.conc.prom" 'int(sum_of("llmgate_workers", state="busy"))'))" \
	    test "$(metric "$TMPDIR_T/$k.conc.prom" 'int(sum_of("llmgate_workers", state="busy"))')" -ge 1

	# A stream in flight, then its process SIGKILLed (mod_fcgid only:
	# under lighttpd the one process is the whole gateway).
	if [ "$k" = apache ]; then
		curl -sS -N --max-time 120 -o "$TMPDIR_T/slow.body" -H "Authorization: Bearer $CLIENT" \
		    -H 'Content-Type: application/json' --data-binary \
		    '{"model":"mock-slow","stream":true,"messages":[{"role":"user","content":"killed"}]}' \
		    "$GW_URL/v1/chat/completions" &
		local curl_pid=$!
		inflight_is() { [ "$(metric <(scrape) 'int(sum_of("llm_requests_in_flight"))')" = "$1" ]; }
		ok "$k: a slow stream shows in flight (1)" wait_until 30 inflight_is 1
		pid=$(gw_streaming_pids | head -n 1)
		ok "$k: its process is known ($pid)" test -n "$pid"
		kill -9 "$pid"
		ok "$k: after SIGKILL of process $pid: nothing in flight" wait_until 30 inflight_is 0
		wait "$curl_pid" 2>/dev/null
		reclaimed() { admin usage --rows --to $(( $(date +%s) + 3600 )) | grep -q '"worker_died":true'; }
		admin reclaim >/dev/null 2>&1
		ok "$k: its reservation was reclaimed (a worker_died row)" wait_until 60 reclaimed
		scrape >"$TMPDIR_T/$k.kill.prom"
		is "$(compare "$TMPDIR_T/$k.kill.prom" | cut -d' ' -f1)" ok "$k: the reclaimed row counted once, like every row"
	fi
}

create_key CLIENT --name client --agent budgeted
create_key LIMITED --name limited --rpm 2
create_key EMPTY --name empty --prepaid
LLMGATE_SERVERS=${LLMGATE_SERVERS:-apache lighttpd nginx cgi} for_each_server "$CONF" scenario

# Counters live in the file: a new server, the same totals.
start_lighttpd "$CONF"
scrape >"$TMPDIR_T/restart.prom"
is "$(compare "$TMPDIR_T/restart.prom" | cut -d' ' -f1)" ok "after the servers stopped and a new one started: the same totals"
stop_server

# metrics_allow: no key needed from 127.0.0.1.
start_lighttpd "$CONF_ALLOW"
api "" GET /metrics
is "$STATUS" 200 "metrics_allow = ..., 127.0.0.1: no key needed from 127.0.0.1"
api "$CLIENT" GET /metrics
is "$STATUS" 200 "from an allowed address any key does"
stop_server
sed 's/^metrics_allow = .*/metrics_allow = 10.0.0.0\/8, not-an-address/' "$CONF" >"$TMPDIR_T/bad.ini"
sed -i 's/^metrics_key = .*/&\nmetrics_allow = 10.0.0.0\/8, not-an-address/' "$TMPDIR_T/bad.ini"
out=$("$LLMGATE" --check-config -c "$TMPDIR_T/bad.ini" 2>&1)
like "$out" 'metrics_allow: "not-an-address" is not an address' "a bad metrics_allow is a config error naming the item"

# contrib/prometheus: the rules, the scrape config, the dashboard.
P=$top_srcdir/contrib/prometheus
out=$(promtool check rules "$P/alerts.yml" 2>&1)
is "$?" 0 "promtool check rules contrib/prometheus/alerts.yml" || diag "$out"
like "$out" 'SUCCESS: [5-9] rules' "the alert rules are there"
for a in LlmgateHighLatency LlmgateErrorRate LlmgateCostSpike LlmgateBudgetNearLimit LlmgateCircuitBreakerOpen; do
	like "$(cat "$P/alerts.yml")" "alert: $a" "alert $a is shipped"
done
cp "$P/alerts.yml" "$TMPDIR_T/llmgate-alerts.yml"
echo "$LLMGATE_METRICS_KEY" >"$TMPDIR_T/llmgate-metrics-key"
sed "s|/etc/prometheus/|$TMPDIR_T/|g" "$P/prometheus.yml" >"$TMPDIR_T/prometheus.yml"
out=$(promtool check config "$TMPDIR_T/prometheus.yml" 2>&1)
is "$?" 0 "promtool check config contrib/prometheus/prometheus.yml" || diag "$out"
exposed=$(metric "$TMPDIR_T/restart.prom" '" ".join(sorted(names))')
out=$(python3 - "$P/grafana-dashboard.json" "$P/alerts.yml" "$exposed" <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
exprs += re.findall(r'expr: \|?\s*\n?((?:.|\n)*?)(?:\n\s+for:|\n\s+labels:)', open(sys.argv[2]).read())
exposed = set(sys.argv[3].split())
base = {re.sub(r'_(bucket|sum|count)$', '', n) for n in exposed}
used = set()
for e in exprs:
    for w in re.findall(r'\b(llm[a-z_]*|rate_limit[a-z_]*)\b', e):
        used.add(w)
unknown = sorted(u for u in used if u not in exposed and u not in base)
print("%d panels, %d metrics, unknown: %s" % (len(dash["panels"]), len(used), " ".join(unknown) or "none"))
PY
)
like "$out" '^[0-9]+ panels, [0-9]+ metrics, unknown: none$' "the Grafana dashboard parses and the dashboard and rules use only exposed metrics ($out)"

done_testing
