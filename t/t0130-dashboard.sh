#!/bin/bash
# t0130-dashboard.sh: the dashboard (www/) in a real browser: headless
# Chromium driven through the DevTools protocol (puppeteer-core,
# t/sdk/dashboard.mjs) under lighttpd and Apache, with the chart library
# the shipped configs serve under /javascript/. The page loads with no
# console error; the charts hold the requests this test made (their data
# points, read from the Chart.js objects, equal the gateway's own report);
# a key created in the page answers a chat, and once disabled in the page
# gets 401; the usage log's filters show exactly the right rows and its CSV
# export holds them; a client key sees its budgets, balance, transactions,
# its chart and a working playground. Before that, the two routes behind
# the page (GET /admin/dashboard/series and /admin/dashboard/log) are
# checked directly: their figures against the report, their refusals.
# Screenshots: t/tmp/screenshots/SERVER-*.png (kept).
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0130
export LLMGATE_MASTER_KEY=sk-master-t0130-dashboard-key
CONF=$TMPDIR_T/llmgate.ini
: "${LLMGATE_SERVERS:=lighttpd apache}"

write_mock_gateway "$CONF"
cat >>"$CONF" <<EOF
[model mock-a]
provider = mock
upstream = mock-a-up
input_price = 12.345
output_price = 37.5

[model mock-b]
provider = mock
upstream = mock-b-up
input_price = 1
output_price = 2
EOF

[ -x /usr/bin/chromium ] || bail "chromium is missing: run t/setup-deps.sh as root"
[ -f /usr/share/javascript/chart.js/chart.min.js ] ||
    bail "libjs-chart.js is missing: run t/setup-deps.sh as root"
setup_sdk
SHOTS=$top_builddir/t/tmp/screenshots
mkdir -p "$SHOTS" || bail "cannot create $SHOTS"
DL=$TMPDIR_T/downloads
mkdir -p "$DL"

create_key ALICE --name alice --daily-budget 1 --prepaid
create_key BOB --name bob --agent bots
admin topup alice 1 >/dev/null || bail "topup alice failed"

# What the test has made so far, across the servers (one store).
N_ALICE=0		# alice's rows with status < 400
ERR_IDS=()		# request ids of the failed requests
ALICE_IDS=()

# browse PHASE [NAME=VALUE...]: run the browser phase; sets B to its JSON.
browse() {
	local phase=$1
	shift
	B=$(env GW_URL="$GW_URL" SHOTS="$SHOTS" SHOT_PREFIX="$SERVER_KIND-" \
	    DOWNLOADS="$DL" "$@" timeout 600 node "$SDK/dashboard.mjs" "$phase" 2>"$TMPDIR_T/browse.err")
	if [ -z "$B" ] || [ "$(jx 'd.get("error") or ""' <<<"$B")" != "" ]; then
		fail "$SERVER_KIND: browser phase $phase ran" "$(jx 'd.get("error")' <<<"$B")" \
		    "$(tail -n 20 "$TMPDIR_T/browse.err")"
		return 1
	fi
	pass "$SERVER_KIND: browser phase $phase ran"
}

# clean WHAT: no console error, page error, failed or refused request.
clean() {
	is "$(jx '[d["console_errors"], d["page_errors"], d["failed_requests"], d["bad_responses"]]' <<<"$B")" \
	    '[[], [], [], []]' "$SERVER_KIND: $1: no console error, no failed request"
}

# The routes the charts and the log read, checked directly (once).
check_routes() {
	local rep ser now out
	now=$(date +%s)
	api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/series?bucket=hour&from=$((now - 7200))&to=$((now + 1))"
	is "$STATUS" 200 "series: 200"
	ser=$BODY
	rep=$(gw_curl "$GW_URL/billing/usage?from=$((now - 7200))")
	is "$(jx '[sum(d["requests"]), sum(d["errors"]), sum(d["cost_micro_usd"])]' <<<"$ser")" \
	    "$(jx '[d["total"]["requests"], d["total"]["errors"], d["total"]["cost_micro_usd"]]' <<<"$rep")" \
	    "series: requests, errors and cost add up to the report's"
	is "$(jx '{g["group"]: g["requests_total"] for g in d["by"]["model"]}' <<<"$ser")" \
	    '{"mock-a": 3, "mock-b": 3}' "series: requests by model"
	is "$(jx '{g["group"]: g["requests_total"] for g in d["by"]["key"]}' <<<"$ser")" \
	    "{\"alice ($ALICE_ID)\": 3, \"bob ($BOB_ID)\": 3}" "series: requests by key"
	is "$(jx '{g["group"]: g["errors_total"] for g in d["by"]["agent"]}' <<<"$ser")" \
	    '{"alice": 0, "bots": 1}' "series: errors by agent"
	is "$(jx 'all(b is None or a <= b for a, b in zip(d["latency_p50_ms"], d["latency_p95_ms"])) and any(v is not None for v in d["latency_p95_ms"])' <<<"$ser")" \
	    true "series: latency p50 <= p95 in every bucket with requests"
	is "$(jx '[len(d["t"]), d["t"][1] - d["t"][0], d["from"] % 3600]' <<<"$ser")" \
	    '[3, 3600, 0]' "series: whole UTC hours from 'from' rounded down"
	api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/series?bucket=day&from=2026-01-01&to=2026-01-03"
	is "$(jx '[d["t"], d["requests"]]' <<<"$BODY")" '[[1767225600, 1767312000], [0, 0]]' \
	    "series: days as UTC dates, empty ones as zeros"

	api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/series?bucket=week"
	is "$STATUS:$(jx 'd["error"]["param"]' <<<"$BODY")" 400:bucket "series: bucket=week refused"
	api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/series?bucket=hour&from=2020-01-01"
	is "$STATUS" 400 "series: more than 1000 buckets refused"
	api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/series?from=$now&to=$now"
	is "$STATUS" 400 "series: an empty range refused"
	api "$ALICE" GET "/admin/dashboard/series"
	is "$STATUS" 403 "series: a client key gets 403"
	api "" GET "/admin/dashboard/log"
	is "$STATUS" 401 "log: no key gets 401"

	api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/log?key=alice&status=ok&limit=2"
	is "$(jx '[d["matched"], d["has_more"], [r["request_id"] for r in d["data"]]]' <<<"$BODY")" \
	    "[3, true, [\"${ALICE_IDS[2]}\", \"${ALICE_IDS[1]}\"]]" \
	    "log: key and status filters, the newest rows first, has_more"
	api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/log?agent=bots&model=mock-b&status=error"
	is "$(jx '[r["request_id"] for r in d["data"]]' <<<"$BODY")" "[\"${ERR_IDS[0]}\"]" \
	    "log: agent, model and status=error filters"
	api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/log?status=$(jx 'd["data"][0]["status"]' <<<"$BODY")"
	is "$(jx '[r["request_id"] for r in d["data"]]' <<<"$BODY")" "[\"${ERR_IDS[0]}\"]" \
	    "log: status=CODE filter"
	api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/log?key=nobody"
	is "$STATUS:$(jx 'd["error"]["code"]' <<<"$BODY")" 404:key_not_found "log: unknown key 404"
	# Both routes once under valgrind (CGI mode, as the web server's user):
	# no invalid access, nothing definitely or indirectly lost. An ASan
	# build checks itself (valgrind cannot run it): no sanitizer report.
	local uri log checker asan=
	! ldd "$LLMGATE" | grep -q libasan || asan=1
	for uri in "/admin/dashboard/series?bucket=hour&from=$((now - 86400))&to=$((now + 1))" \
	    "/admin/dashboard/log?key=alice&model=mock-a&status=ok&limit=2"; do
		log=$TMPDIR_T/vg.$(date +%s%N)
		touch "$log" && chmod 0666 "$log"
		checker=(valgrind --suppressions="$top_srcdir/t/valgrind.supp" --leak-check=full
		    --errors-for-leak-kinds=definite,indirect --error-exitcode=99
		    --log-file="$log")
		[ -z "$asan" ] || checker=(env ASAN_OPTIONS=detect_leaks=1)
		out=$(as_gw_user env -i PATH="$PATH" REQUEST_METHOD=GET REQUEST_URI="$uri" \
		    HTTP_AUTHORIZATION="Bearer $LLMGATE_MASTER_KEY" LLMGATE_CONFIG="$CONF" \
		    LLMGATE_MASTER_KEY="$LLMGATE_MASTER_KEY" MOCK_API_KEY="$MOCK_API_KEY" \
		    "${checker[@]}" "$LLMGATE" 2>"$log.stderr")
		is "$?" 0 "memory check ${uri%%\?*}: exit status"
		if [ -z "$asan" ]; then
			like "$(cat "$log")" 'ERROR SUMMARY: 0 errors' "valgrind ${uri%%\?*}: no errors"
		else
			unlike "$(cat "$log.stderr")" 'Sanitizer' "ASan ${uri%%\?*}: no report"
		fi
		like "$out" '^Status: 200' "memory check ${uri%%\?*}: answered 200"
	done

	local bad
	for bad in status=600 status=oops limit=0 limit=2001 limit=x from=yesterday; do
		api "$LLMGATE_MASTER_KEY" GET "/admin/dashboard/log?$bad"
		is "$STATUS" 400 "log: $bad refused"
	done
}

scenario() {
	local ui=ui-$SERVER_KIND i id secret rep today old_prefix ui_id rotated

	# The traffic the charts must show: alice 3 on mock-a, bob 2 on
	# mock-b and one that fails upstream.
	for i in 1 2 3; do
		chat_as "$ALICE" mock-a "hello $i"
		[ "$STATUS" = 200 ] || bail "alice's chat answered $STATUS: $BODY"
		ALICE_IDS+=("$(hdr X-Request-Id)")
		N_ALICE=$((N_ALICE + 1))
	done
	for i in 1 2; do
		chat_as "$BOB" mock-b "hi $i"
		[ "$STATUS" = 200 ] || bail "bob's chat answered $STATUS: $BODY"
	done
	chat_as "$BOB" mock-b "MOCK{status=500}"
	like "$STATUS" '^5' "$SERVER_KIND: an upstream failure is an error ($STATUS)"
	ERR_IDS+=("$(hdr X-Request-Id)")
	! on_first_server || check_routes

	# The master key: the overview's charts hold what the report says.
	rep=$(gw_curl "$GW_URL/billing/usage?from=$(($(date +%s) - 86000))")
	browse master KEY="$LLMGATE_MASTER_KEY" NEW_KEY="$ui" || return
	clean "overview, keys, models"
	is "$(jx '[d["role"], d["chart_library"]]' <<<"$B")" '["master", "3.9.1"]' \
	    "$SERVER_KIND: master view with Chart.js from /javascript/"
	is "$(jx '[len(d["requests"]["labels"]), d["requests"]["drawn"]]' <<<"$B")" '[24, true]' \
	    "$SERVER_KIND: requests chart: 24 hourly points, drawn"
	is "$(jx '[sum(d["requests"]["datasets"][0]["data"]), sum(d["requests"]["datasets"][1]["data"])]' <<<"$B")" \
	    "$(jx '[d["total"]["requests"], d["total"]["errors"]]' <<<"$rep")" \
	    "$SERVER_KIND: requests chart: its requests and errors are the report's"
	is "$(jx 'round(sum(d["cost"]["datasets"][0]["data"]) * 1e6)' <<<"$B")" \
	    "$(jx 'd["total"]["cost_micro_usd"]' <<<"$rep")" "$SERVER_KIND: cost chart: the report's cost"
	is "$(jx '[x["label"] for x in d["latency"]["datasets"]] + [any(v is not None for v in d["latency"]["datasets"][1]["data"])]' <<<"$B")" \
	    '["p50", "p95", true]' "$SERVER_KIND: latency chart: p50 and p95 with points"
	rep=$(gw_curl "$GW_URL/billing/usage?group_by=model&from=$(($(date +%s) - 86000))")
	is "$(jx '{x["label"]: sum(x["data"]) for x in d["by_model"]["datasets"]}' <<<"$B")" \
	    "$(jx '{r["group"]: r["requests"] for r in d["data"]}' <<<"$rep")" \
	    "$SERVER_KIND: by-model chart: each model's requests"
	like "$(jx '[x["label"] for x in d["by_key"]["datasets"]]' <<<"$B")" "\"alice \\($ALICE_ID\\)\".*\"bob \\($BOB_ID\\)\"" \
	    "$SERVER_KIND: by-key chart: a series per key"
	is "$(jx 'len(d["requests_30d"]["labels"])' <<<"$B")" 30 "$SERVER_KIND: 30-day range: daily points"
	is "$(jx '[b["label"] for b in d["budgets"]]' <<<"$B")" '["alice \u00b7 today"]' \
	    "$SERVER_KIND: budgets: alice's daily budget"
	api "$LLMGATE_MASTER_KEY" GET "/usage?key=alice"
	is "$(jx '[[b["spent"], b["limit"]] for b in d["budgets"]]' <<<"$B")" \
	    "[[$(jx 'd["budgets"]["key_spent_today_micro_usd"]' <<<"$BODY"), 1000000]]" \
	    "$SERVER_KIND: budgets: spent and limit as the gateway counts them"
	is "$(jx 'sorted(d["breakers"])' <<<"$B")" '["mock/mock-a-up", "mock/mock-b-up"]' \
	    "$SERVER_KIND: breaker states listed"
	is "$(jx 'd["models"]' <<<"$B")" '["mock-a", "mock-b"]' "$SERVER_KIND: models listed"

	# A key created in the page answers a chat with its secret.
	secret=$(jx 'd["secret"]' <<<"$B")
	like "$secret" '^sk-[A-Za-z0-9]{48}$' "$SERVER_KIND: the page showed the new secret once"
	chat_as "$secret" mock-a "from the new key"
	is "$STATUS" 200 "$SERVER_KIND: the key created in the page answers a chat"
	api "$LLMGATE_MASTER_KEY" GET "/admin/keys/$ui"
	is "$(jx '[d["rpm"], d["max_concurrent"], d["daily_budget_micro_usd"], d["monthly_budget_micro_usd"], d["models"]]' <<<"$BODY")" \
	    '[100, 4, 1500000, 20000000, ["mock-a"]]' "$SERVER_KIND: created with the options typed"
	chat_as "$secret" mock-b "not allowed"
	like "$STATUS" '^4' "$SERVER_KIND: the created key's model list holds ($STATUS)"

	# Disabled in the page: 401.
	browse disable KEY="$LLMGATE_MASTER_KEY" NEW_KEY="$ui" || return
	is "$(jx 'd["status"]' <<<"$B")" disabled "$SERVER_KIND: the page shows the key disabled"
	chat_as "$secret" mock-a "after disable"
	is "$STATUS" 401 "$SERVER_KIND: a key disabled in the page gets 401"
	# Editing limits, rotating and deleting (POST /admin/keys/ID,
	# .../rotate, DELETE /admin/keys/ID) from the page.
	is "$(jx 'd["edit"]' <<<"$B")" "Saved rpm." "$SERVER_KIND: edit: saved"
	api "$LLMGATE_MASTER_KEY" GET "/admin/keys/$ui"
	is "$(jx 'd["rpm"]' <<<"$BODY")" 50 "$SERVER_KIND: edit: the new rpm stored"
	old_prefix=$(jx 'd["prefix"]' <<<"$BODY")
	ui_id=$(jx 'd["id"]' <<<"$BODY")	# a deleted key's name is free again
	browse manage KEY="$LLMGATE_MASTER_KEY" NEW_KEY="$ui" || return
	rotated=$(jx 'd["rotate"]["secret"]' <<<"$B")
	like "$rotated" '^sk-[A-Za-z0-9]{48}$' "$SERVER_KIND: rotate: the page showed the new secret once"
	isnt "$rotated" "$secret" "$SERVER_KIND: rotate: a secret other than the old one"
	like "$(jx 'd["delete"]["notice"]' <<<"$B")" "^Key .* deleted\\.\$" "$SERVER_KIND: delete: done"
	api "$LLMGATE_MASTER_KEY" GET "/admin/keys/$ui_id"
	is "$(jx '[d.get("deleted"), d["prefix"] != "'"$old_prefix"'"]' <<<"$BODY")" '[true, true]' \
	    "$SERVER_KIND: delete: the key is deleted, under its rotated prefix"
	chat_as "$rotated" mock-a "after delete"
	is "$STATUS" 401 "$SERVER_KIND: the rotated secret of the deleted key gets 401"
	chat_as "$secret" mock-a "after delete"
	is "$STATUS" 401 "$SERVER_KIND: and the first one too"

	# The usage log's filters in the page.
	browse log KEY="$LLMGATE_MASTER_KEY" LOG_KEY="$ALICE_ID" || return
	clean "usage log"
	is "$(jx 'sorted(set((r["key"], r["status"]) for r in d["ok_rows"]))' <<<"$B")" \
	    "[[\"alice ($ALICE_ID)\", 200]]" "$SERVER_KIND: log filtered on alice and ok: only those rows"
	is "$(jx 'len(d["ok_rows"])' <<<"$B")" "$N_ALICE" "$SERVER_KIND: log: all $N_ALICE of alice's"
	for id in "${ALICE_IDS[@]}"; do
		like "$(jx '" ".join(r["id"] for r in d["ok_rows"])' <<<"$B")" "$id" \
		    "$SERVER_KIND: log: alice's $id shown" || break
	done
	is "$(jx 'sorted(r["id"] for r in d["error_rows"])' <<<"$B")" \
	    "$(printf '%s\n' "${ERR_IDS[@]}" | python3 -c 'import json,sys; print(json.dumps(sorted(sys.stdin.read().split())))')" \
	    "$SERVER_KIND: log filtered on errors: exactly the failed requests"
	is "$(jx 'd["csv"].splitlines()[0].split(",")[:3] + [len(d["csv"].splitlines()) - 1]' <<<"$B")" \
	    "[\"time_us\", \"request_id\", \"key_id\", $N_ALICE]" \
	    "$SERVER_KIND: CSV export: a header and the rows shown"
	rm -f "$DL/llmgate-usage.csv"

	# alice's own view: budgets, balance, transactions, chart, playground.
	api "$ALICE" GET /usage
	today=$BODY
	browse client KEY="$ALICE" || return
	clean "client view, playground"
	is "$(jx '[d["role"], d["tabs"]]' <<<"$B")" '["client", ["mine", "models", "play"]]' \
	    "$SERVER_KIND: a client key sees its own tabs only"
	is "$(jx '[[b["label"], b["spent"], b["limit"]] for b in d["budgets"]]' <<<"$B")" \
	    "[[\"Key, today\", $(jx 'd["budgets"]["key_spent_today_micro_usd"]' <<<"$today"), 1000000]]" \
	    "$SERVER_KIND: client: spend against the daily budget"
	is "$(jx '[d["mine"]["labels"][-1], d["mine"]["datasets"][0]["data"][-1], len(d["mine"]["labels"])]' <<<"$B")" \
	    "[\"$(date -u +%F)\", $(jx 'd["today"]["requests"]' <<<"$today"), 30]" \
	    "$SERVER_KIND: client chart: today's requests, 30 days"
	is "$(jx 'sorted(set(d["tx"]))' <<<"$B")" '["debit", "topup"]' \
	    "$SERVER_KIND: client: recent transactions"
	like "$(jx 'd["answer"]' <<<"$B")" '^tok0 tok1 tok2' "$SERVER_KIND: the playground streams an answer"
	N_ALICE=$((N_ALICE + 1))
}

for_each_server "$CONF" scenario
diag "screenshots: $(cd "$SHOTS" && echo *.png)"
done_testing
