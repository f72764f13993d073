#!/bin/bash
# t0100-cli.sh: the command line, config errors with file:line, and CGI
# mode driven directly through its environment (no web server).
. "$(dirname "$0")/lib.sh"

setup_tmp
C=$TMPDIR_T/c.ini

check() {	# config text -> output of --check-config, exit status in RC
	printf '%s\n' "$1" >"$C"
	OUT=$("$LLMGATE" --check-config --config "$C" 2>&1)
	RC=$?
}

GW="[gateway]
data_dir = $TMPDIR_T/data"

out=$("$LLMGATE" --version)
like "$out" '^llmgate [0-9]+\.[0-9]+' "--version"
"$LLMGATE" --help | grep -q -- --threads
ok "--help lists --threads" test $? -eq 0
"$LLMGATE" --bogus >/dev/null 2>&1
is "$?" 2 "unknown option exits 2"
out=$("$LLMGATE" --help-config)
like "$out" 'first_byte_timeout' "--help-config lists keys"

# The shipped sample is valid; providers without keys are only warnings.
out=$(env -u OPENAI_API_KEY "$LLMGATE" --check-config --config "$top_srcdir/conf/llmgate.ini" 2>&1)
is "$?" 0 "conf/llmgate.ini passes --check-config"
like "$out" 'provider openai unavailable: environment variable OPENAI_API_KEY is not set' \
    "missing key is reported as unavailable"
like "$out" '16 models' "sample ships the 12 seed models and 4 more"
for m in claude-opus-4-6 claude-sonnet-4-5 claude-haiku-4-5 gpt-4o gpt-4o-mini gpt-4-turbo o1 \
    o3-mini gemini-2.5-pro gemini-2.0-flash deepseek-chat deepseek-reasoner; do
	grep -q "^\[model $m\]" "$top_srcdir/conf/llmgate.ini" || fail "seed model $m missing"
done
pass "every seed model is in the sample"
out=$(OPENAI_API_KEY=sk-test-value "$LLMGATE" --check-config --config "$top_srcdir/conf/llmgate.ini" 2>&1)
unlike "$out" 'sk-test-value' "a key never appears in the output"

# Config from LLMGATE_CONFIG.
check "$GW"
LLMGATE_CONFIG=$C "$LLMGATE" --check-config >/dev/null 2>&1
is "$?" 0 "LLMGATE_CONFIG names the config"

# Errors name file:line and the reason.
check "$GW
[provider p]
type = openai
base_url = http://x
api_key = sk-literal-secret"
is "$RC" 1 "literal secret refused"
like "$OUT" "$C:6: api_key: secrets never live in the INI" "literal secret error has file:line"
unlike "$OUT" 'sk-literal-secret' "refused secret is not echoed"

check "$GW
bogus = 1"
like "$OUT" "$C:3: unknown key \"bogus\" in \[gateway\]" "unknown key at its line"

check "$GW
[nonsense]
a = b"
like "$OUT" "$C:3: unknown section \[nonsense\]" "unknown section at its header line"

check "$GW
max_body = lots"
like "$OUT" "$C:3: max_body: \"lots\" is not an integer" "bad integer"

check "$GW
[retry]
attempts = 99"
like "$OUT" "$C:4: attempts: 99 is out of range 1..10" "out of range"

check "$GW
[model m]
provider = ghost"
like "$OUT" "$C:3: \[model m\]: no \[provider ghost\]" "model with unknown provider"

check "$GW
[provider p]
type = openai
base_url = http://x
[model m]
provider = p
fallback = missing"
like "$OUT" "$C:6: \[model m\] fallback: no \[model missing\]" "fallback to unknown model"

check "$GW
[provider p]
type = carrier-pigeon
base_url = http://x"
like "$OUT" "$C:4: type: unknown provider type" "unknown provider type"

long=$(printf 'x%.0s' $(seq 1 250))
check "$GW
default_provider = $long"
like "$OUT" "$C:3: line longer than" "over-long line refused at its line"

check "$GW
this line is not ini"
like "$OUT" "$C:3: syntax error" "syntax error line"

check "[gateway]"
like "$OUT" "needs data_dir" "data_dir is required"

"$LLMGATE" --check-config --config "$TMPDIR_T/nope.ini" >/dev/null 2>&1
is "$?" 1 "missing config file exits 1"

# CGI mode: one request from the environment.
check "$GW"
out=$(REQUEST_METHOD=GET REQUEST_URI=/health LLMGATE_CONFIG=$C "$LLMGATE" </dev/null 2>/dev/null)
like "$out" '^Status: 200 OK' "CGI /health status line"
like "$out" '"status":"ok"' "CGI /health body"
out=$(REQUEST_METHOD=GET REQUEST_URI=/nope LLMGATE_CONFIG=$C "$LLMGATE" </dev/null 2>/dev/null)
like "$out" '^Status: 404' "CGI unknown route 404"
like "$out" '"type":"invalid_request_error"' "404 in OpenAI shape"
out=$("$LLMGATE" --config "$C" </dev/null 2>&1)
like "$out" 'not started by a web server' "run from a shell without CGI variables"

# Model ids with '/' work plain and percent-encoded.
check "$GW
master_key = env:T0100_MASTER
[provider p]
base_url = http://127.0.0.1:9
api_key = none
[model vendor/model-x]
provider = p"
export T0100_MASTER=t0100-master-secret
out=$(REQUEST_METHOD=GET REQUEST_URI=/v1/models/vendor/model-x LLMGATE_CONFIG=$C "$LLMGATE" </dev/null 2>/dev/null)
like "$out" '^Status: 401' "every route but health needs a key"
out=$(HTTP_AUTHORIZATION="Bearer $T0100_MASTER" REQUEST_METHOD=GET REQUEST_URI=/v1/models/vendor/model-x LLMGATE_CONFIG=$C "$LLMGATE" </dev/null 2>/dev/null)
like "$out" '"id":"vendor/model-x"' "model id with a slash"
out=$(HTTP_AUTHORIZATION="Bearer $T0100_MASTER" REQUEST_METHOD=GET REQUEST_URI=/v1/models/vendor%2Fmodel-x LLMGATE_CONFIG=$C "$LLMGATE" </dev/null 2>/dev/null)
like "$out" '"id":"vendor/model-x"' "percent-encoded model id"

# base_path is stripped before routing.
check "$GW
base_path = /llm/"
out=$(REQUEST_METHOD=GET REQUEST_URI=/llm/health?x=1 LLMGATE_CONFIG=$C "$LLMGATE" </dev/null 2>/dev/null)
like "$out" '^Status: 200' "base_path stripped"

# A broken config still answers a CGI request, without details.
printf '[gateway]\nbroken\n' >"$C"
out=$(REQUEST_METHOD=GET REQUEST_URI=/health LLMGATE_CONFIG=$C "$LLMGATE" </dev/null 2>/dev/null)
like "$out" '^Status: 500' "CGI with broken config answers 500"
like "$out" '"code":"config_error"' "config_error code"

# llmgate-admin replay where it cannot write: a clear message naming the
# directory or file and the reason, exit 1, promptly, the file untouched.
R=$TMPDIR_T/replay
mkdir -p "$R/data" "$R/elsewhere"
[ "$(id -u)" -ne 0 ] || chown "$GW_USER:$GW_GROUP" "$R/data" "$R/elsewhere"
printf '[gateway]\ndata_dir = %s\n' "$R/data" >"$R/llmgate.ini"
chmod 0644 "$R/llmgate.ini"
export ADMIN_CONF=$R/llmgate.ini
admin check >/dev/null 2>&1
ok "replay: the store exists" test -e "$R/data/keys.db"
printf '{"not":"a row"}\n' >"$R/data/usage-fallback.jsonl"
cp "$R/data/usage-fallback.jsonl" "$R/elsewhere/rows.jsonl"
chmod a+r "$R/data/usage-fallback.jsonl" "$R/elsewhere/rows.jsonl"
replay_fails() {	# NAME ERE [FILE]: replay exits 1 at once, saying ERE
	local t0 out rc
	t0=$(_now_usec)
	out=$(as_gw_user timeout 60 "$ADMIN_BIN" -c "$ADMIN_CONF" replay ${3:+"$3"} 2>&1)
	rc=$?
	is "$rc" 1 "replay $1: exit 1"
	like "$out" "$2" "replay $1: says so"
	unlike "$out" 'no error|DB_|BDB[0-9]' "replay $1: no Berkeley DB riddle"
	ok "replay $1: within 10 s" test $(( $(_now_usec) - t0 )) -lt 10000000
}
chmod 0555 "$R/data"
replay_fails "into a read-only data dir" "cannot write to the store directory $R/data: Permission denied"
is "$(cat "$R/data/usage-fallback.jsonl")" '{"not":"a row"}' "replay: the fallback file is untouched"
chmod 0755 "$R/data"
chmod 0444 "$R/data/usage.db"
replay_fails "into a read-only store file" "cannot write the store file $R/data/usage.db: Permission denied"
chmod 0660 "$R/data/usage.db"
chmod 0555 "$R/elsewhere"
replay_fails "of a file in a read-only dir" "cannot write to $R/elsewhere, where $R/elsewhere/rows.jsonl is moved aside: Permission denied" \
    "$R/elsewhere/rows.jsonl"
chmod 0755 "$R/elsewhere"
out=$(admin replay 2>&1)
is "$?" 0 "replay once it can write: exit 0"
like "$out" 'imported 0, duplicate 0, bad 1' "replay: then it reads the file"
unset ADMIN_CONF

done_testing
