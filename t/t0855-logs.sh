#!/bin/bash
# t0855-logs.sh: logs and traces tools can read. With log_format = json
# every line the gateway writes (its stderr: the error log under Apache and
# CGI, the journal-ish stderr under lighttpd and spawn-fcgi) is one JSON
# object with time, level, pid and message; the usage line carries the
# request id, key prefix, agent, models, provider, status, latency, tokens,
# cost and traceparent. A client's W3C traceparent reaches the upstream on
# every attempt with the same trace id and the gateway's own span as parent,
# comes back in the response and is in the usage row and the log line; a
# malformed one is replaced by a new trace. No client key, master key or
# provider key is ever in a log line, even when a provider's error quotes it
# and names carry quotes, control bytes and invalid UTF-8.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0855-secret
export LLMGATE_MASTER_KEY=sk-master-t0855-secret-key
CONF=$TMPDIR_T/llmgate.ini
write_mock_gateway "$CONF" "log_format = json"
sed -i 's/^attempts = 1$/attempts = 3\nbackoff_ms = 10/' "$CONF"
cat >>"$CONF" <<EOF
[model mock-ok]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00

[model mock-retry]
provider = mock
upstream = mock@status=503,times=2
input_price = 1.00
output_price = 2.00

[model mock-leak]
provider = mock
upstream = mock@status=500,leak=1
input_price = 1.00
output_price = 2.00
EOF
admin recover >/dev/null || bail "llmgate-admin recover failed"
create_key KEY --name log-key --agent log-agent || bail "no key"

TID=4bf92f3577b34da6a3ce929d0e0e4736
PID=00f067aa0ba902b7
TP="00-$TID-$PID-01"

# The traceparent header the mock saw on its last N requests (one per line).
mock_tp() {
	mock_log | python3 -c '
import json, sys
n = int(sys.argv[1])
for e in json.load(sys.stdin)["log"][-n:]:
    h = {k.lower(): v for k, v in e["headers"].items()}
    print(h.get("traceparent", "-"))' "${1:-1}"
}
valid_tp='^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'

# The usage row of request id $1 as JSON.
row_of() { admin usage --rows --key log-key | grep -F "\"$1\"" | tail -n 1; }

# lines_of_gateway: the gateway's own lines of the server log (the web
# server's own lines left out; under CGI, the stderr line mod_cgid wraps).
gw_lines() {
	python3 - "$SERVER_KIND" "$SERVER_LOG" <<'EOF'
import re, sys
kind, path = sys.argv[1], sys.argv[2]
for line in open(path, encoding="utf-8", errors="surrogateescape"):
    line = line.rstrip("\n")
    if not line:
        continue
    if kind in ("apache", "cgi"):
        m = re.search(r"AH01215: (.*?)(: /\S+)?$", line)
        if m:
            print(m.group(1)); continue
        if line.startswith("["):	# Apache's own
            continue
    if kind == "nginx" and line.startswith("spawn-fcgi: "):
        continue
    print(line)
EOF
}

scenario() {
	local rid hdr up row out bad n

	# A client's traceparent: same trace, the gateway's span as parent.
	mock_clear
	api "$KEY" POST /v1/chat/completions "$(chat_json mock-ok hi)" \
	    2>/dev/null
	out=$(curl -sS --max-time 30 -D - -o /dev/null -H "Authorization: Bearer $KEY" \
	    -H "traceparent: $TP" -H 'Content-Type: application/json' \
	    --data-binary "$(chat_json mock-ok hello)" "$GW_URL/v1/chat/completions" | tr -d '\r')
	rid=$(sed -n 's/^X-Request-Id: //Ip' <<<"$out")
	hdr=$(sed -n 's/^traceparent: //Ip' <<<"$out")
	up=$(mock_tp 1)
	like "$up" "^00-$TID-[0-9a-f]{16}-01\$" "$SERVER_KIND: the upstream got the client's trace id ($up)"
	isnt "${up:36:16}" "$PID" "$SERVER_KIND: ... with the gateway's span as parent, not the client's"
	is "$hdr" "$up" "$SERVER_KIND: the response's traceparent is the one sent upstream"
	row=$(row_of "$rid")
	is "$(jx 'd["traceparent"]' <<<"$row")" "$up" "$SERVER_KIND: the usage row has the traceparent"
	is "$(jx 'd["trace_parent_id"]' <<<"$row")" "$PID" "$SERVER_KIND: ... and the client's parent id"
	is "$(jx 'd["key_prefix"]' <<<"$row")" "${KEY:0:10}" "$SERVER_KIND: ... and the key prefix"

	# Every attempt carries it: two 503s, then the answer.
	mock_clear
	out=$(curl -sS --max-time 30 -D - -o /dev/null -H "Authorization: Bearer $KEY" \
	    -H "traceparent: $TP" -H 'Content-Type: application/json' \
	    --data-binary "$(chat_json mock-retry again)" "$GW_URL/v1/chat/completions" | tr -d '\r')
	like "$out" '^HTTP/1.1 200' "$SERVER_KIND: served on the third attempt"
	is "$(mock_tp 3 | sort -u | grep -c "^00-$TID-")" 1 \
	    "$SERVER_KIND: all three attempts carried the same trace and span ($(mock_tp 3 | tr '\n' ' '))"
	mock_log | jx 'str(d["requests"])' >/dev/null

	# Malformed ones are ignored: a new trace id, valid, for each.
	bad=0
	for h in "00-${TID^^}-$PID-01" "ff-$TID-$PID-01" "01-$TID-$PID-01" \
	    "00-00000000000000000000000000000000-$PID-01" "00-$TID-0000000000000000-01" \
	    "00-$TID-$PID-1" "00-$TID-$PID-01-extra" "00_${TID}_${PID}_01" \
	    "00-$TID-$PID-0g" "garbage" "00-${TID:1}x-$PID-01"; do
		mock_clear
		curl -sS --max-time 30 -o /dev/null -H "Authorization: Bearer $KEY" \
		    -H "traceparent: $h" -H 'Content-Type: application/json' \
		    --data-binary "$(chat_json mock-ok x)" "$GW_URL/v1/chat/completions"
		up=$(mock_tp 1)
		if ! [[ $up =~ $valid_tp ]] || [ "${up:3:32}" = "$TID" ]; then
			bad=$((bad + 1))
			diag "sent '$h', upstream got '$up'"
		fi
	done
	is "$bad" 0 "$SERVER_KIND: 11 malformed traceparents each replaced by a new valid trace"

	# None sent: one is generated.
	mock_clear
	chat_as "$KEY" mock-ok plain
	up=$(mock_tp 1)
	like "$up" "$valid_tp" "$SERVER_KIND: no traceparent sent: a generated one reached the upstream"
	is "$(hdr traceparent)" "$up" "$SERVER_KIND: ... and came back to the client"

	# Hostile names and a provider that quotes its key in errors.
	chat_as "$KEY" $'evil"\\\x01\x1f\xff\xfe<\xc3\x28>' x
	like "$STATUS" "^4" "$SERVER_KIND: a hostile model name: refused ($STATUS)"
	chat_as "$KEY" mock-leak x
	like "$STATUS" "^5" "$SERVER_KIND: an upstream error quoting the provider key: $STATUS"
	api "" GET /v1/models
	api "sk-wrong-$LLMGATE_MASTER_KEY" GET /v1/models

	# The log: every line one JSON object; the usage line's members.
	wait_until 10 grep -qF "$rid" "$SERVER_LOG"
	out=$(gw_lines | python3 -c '
import json, sys
rid, keys = sys.argv[1], sys.argv[2:]
n = bad = 0
usage = None
for line in sys.stdin:
    line = line.rstrip("\n")
    n += 1
    try:
        o = json.loads(line)
        assert isinstance(o, dict)
        for k in ("time", "level", "pid", "message"):
            assert k in o, k
    except Exception as e:
        bad += 1
        print("not JSON (%s): %r" % (e, line), file=sys.stderr)
        continue
    for k in keys:
        if k in line:
            bad += 1
            print("a secret in: %r" % line, file=sys.stderr)
    if o.get("event") == "usage" and o.get("request_id") == rid:
        usage = o
want = ["request_id", "key_prefix", "agent", "model", "served", "provider",
        "status", "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens",
        "cost_micro_usd", "cost_usd", "attempts", "stream", "traceparent"]
missing = [k for k in want if usage is None or k not in usage]
print(n, bad, ",".join(missing) or "-", usage["traceparent"] if usage else "-",
      usage["agent"] if usage else "-", usage["key_prefix"] if usage else "-")
' "$rid" "$KEY" "$LLMGATE_MASTER_KEY" "$MOCK_API_KEY" "${KEY:10}" 2>"$TMPDIR_T/bad.txt")
	read -r n bad missing up agent pfx <<<"$out"
	ok "$SERVER_KIND: $n gateway log lines, every one a JSON object with time, level, pid, message and no secret" \
	    test "${n:-0}" -gt 5 -a "${bad:-1}" -eq 0 || diag "$(head -c 3000 "$TMPDIR_T/bad.txt")"
	is "$missing" - "$SERVER_KIND: the usage line has every field"
	like "$up" "^00-$TID-" "$SERVER_KIND: the usage line has the client's trace"
	is "$agent" log-agent "$SERVER_KIND: the usage line names the agent"
	is "$pfx" "${KEY:0:10}" "$SERVER_KIND: the key prefix, never the key"
}

for_each_server "$CONF" scenario
done_testing
