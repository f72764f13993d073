#!/bin/bash
# t0860-hostile.sh: hostile upstreams and hostile CGI environments.
# An upstream that quotes the gateway's credentials back in its error
# messages (401, 400, 429, a mid-stream error event, the Anthropic
# protocol) has them redacted before the client or the log sees them,
# under every front end. A CGI request whose CONTENT_LENGTH is not a
# number, is negative or overflows gets 400 "invalid Content-Length";
# a numeric one over max_body gets 413.
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
# Not shaped like a key: only the configured value itself can find it.
export MOCK_API_KEY=Zt0860-provider-credential-9f8e7d6c
export LLMGATE_MASTER_KEY=sk-master-t0860-key
CONF=$TMPDIR_T/llmgate.ini

# breaker = off: every front end sends the same failing mock deployment
# (401s, 429s, 5xx) on purpose; breakers are t0835's.
write_mock_gateway "$CONF" "log_level = debug" "max_body = 65536" "breaker = off"
cat >>"$CONF" <<EOF
[provider claude]
type = anthropic
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY

[model mock-ok]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00

[model claude-ok]
provider = claude
upstream = claude-mock
input_price = 1.00
output_price = 2.00
max_tokens = 100
EOF

# The mock leaks when asked: the test attacks something real.
out=$(curl -sS -H "Authorization: Bearer $MOCK_API_KEY" -H 'Content-Type: application/json' \
    --data-binary "$(chat_json mock-ok 'MOCK{status=401,leak=1}')" "$MOCK_URL/v1/chat/completions")
like "$out" "provided: $MOCK_API_KEY\\. You sent Authorization: Bearer $MOCK_API_KEY" \
    "the mock quotes the key and the Bearer value back (leak=1)"

SEEN=$TMPDIR_T/seen		# every answer a client got
: >"$SEEN"

leaks() {	# MODEL TEXT [EXTRA]: one request; its answer appended to $SEEN
	api "$LLMGATE_MASTER_KEY" POST /v1/chat/completions "$(chat_json "$1" "$2" "${3:-}")"
	printf '%s\n%s\n' "$STATUS" "$BODY" >>"$SEEN"
}

scenarios() {
	local k=$SERVER_KIND logs

	leaks mock-ok 'MOCK{status=400,leak=1}'
	is "$STATUS" 400 "$k: an upstream 400 goes back to the client"
	like "$BODY" 'mock fault 400: Incorrect API key provided: \[redacted\]\. You sent Authorization: Bearer \[redacted\]' \
	    "$k: 400: its message relayed with the key and the Bearer value redacted"
	unlike "$BODY" "$MOCK_API_KEY|9f8e7d6c" "$k: 400: no part of the provider key"

	leaks mock-ok 'MOCK{status=429,leak=1}'
	is "$STATUS" 429 "$k: an upstream 429 goes back after the retries"
	like "$BODY" 'Incorrect API key provided: \[redacted\]' "$k: 429: redacted"

	leaks mock-ok 'MOCK{status=401,leak=1}'
	is "$STATUS" 502 "$k: an upstream 401 is the gateway's problem: 502"
	like "$BODY" 'upstream_auth_error' "$k: 401: upstream_auth_error"

	leaks mock-ok 'MOCK{stream_error=1,leak=1}' '"stream":true'
	is "$STATUS" 200 "$k: a stream that began"
	like "$BODY" 'data: \{"error":\{"message":"mock stream error: Incorrect API key provided: \[redacted\]' \
	    "$k: a mid-stream error event is relayed in-band, redacted"

	leaks claude-ok 'MOCK{status=400,leak=1}'
	is "$STATUS" 400 "$k: anthropic: an upstream 400 goes back"
	like "$BODY" 'x-api-key: \[redacted\]' "$k: anthropic: the x-api-key value redacted"

	unlike "$(cat "$SEEN")" "$MOCK_API_KEY|9f8e7d6c" \
	    "$k: no answer to a client holds the provider key"
	# The gateway's log: the web server's error log or its stderr.
	logs=$(cat "$SERVER_LOG" 2>/dev/null; find "$SERVER_DIR" -type f -name '*.log' \
	    -exec cat {} + 2>/dev/null)
	like "$logs" 'provider mock said: mock fault 401: Incorrect API key provided: \[redacted\]' \
	    "$k: the 401's text is logged (debug), redacted"
	like "$logs" 'attempt 1: mock fault 400: Incorrect API key provided: \[redacted\]' \
	    "$k: the 400's text is logged, redacted"
	unlike "$logs" "$MOCK_API_KEY|9f8e7d6c" "$k: the log never holds the provider key"
}
for_each_server "$CONF" scenarios

# --- CGI: CONTENT_LENGTH that is not a length -----------------------------------

cgi() {	# CONTENT_LENGTH BODY: POST /v1/chat/completions as a plain CGI
	printf '%s' "$2" | HTTP_AUTHORIZATION="Bearer $LLMGATE_MASTER_KEY" \
	    REQUEST_METHOD=POST REQUEST_URI=/v1/chat/completions \
	    CONTENT_TYPE=application/json CONTENT_LENGTH="$1" \
	    LLMGATE_CONFIG=$CONF as_gw_user timeout 30 "$LLMGATE" 2>/dev/null
}

body=$(chat_json mock-ok hello)
out=$(cgi "${#body}" "$body")
like "$out" '^Status: 200' "CGI: a true CONTENT_LENGTH is served"
for cl in abc 12abc -5 -0 +5 ' 5' '5 ' 0x10 1e3 9223372036854775807 \
    9223372036854775808 18446744073709551617 99999999999999999999999; do
	out=$(cgi "$cl" "$body")
	like "$out" '^Status: 400' "CGI: CONTENT_LENGTH '$cl' gets 400"
	like "$out" '"message":"invalid Content-Length"' "CGI: CONTENT_LENGTH '$cl': invalid Content-Length"
done
out=$(cgi 999999999999999999 "$body")
like "$out" '^Status: 413' "CGI: a numeric CONTENT_LENGTH past max_body gets 413"
out=$(cgi 65537 "$body")
like "$out" '^Status: 413' "CGI: one byte past max_body gets 413"
out=$(cgi $(( ${#body} + 10 )) "$body")
like "$out" '^Status: 400' "CGI: a body shorter than CONTENT_LENGTH gets 400"
like "$out" 'shorter than Content-Length' "CGI: ... and says so"

done_testing
