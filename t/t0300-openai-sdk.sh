#!/bin/bash
# t0300-openai-sdk.sh: the official openai npm client against the gateway
# under Apache mod_fcgid: one non-streaming and one streaming call.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=sk-mock-upstream-secret
export LLMGATE_MASTER_KEY=sk-master-sdk-key
CONF=$TMPDIR_T/llmgate.ini

cat >"$CONF" <<EOF2
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY

[provider mock]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
match = mock*

[model mock-ok]
provider = mock
upstream = mock
EOF2

setup_sdk

start_apache "$CONF"
out=$(node "$SDK/openai-client.mjs" "$GW_URL/v1" "$LLMGATE_MASTER_KEY" mock-ok 2>&1)
diag "sdk: $out"
field() { echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1" 2>/dev/null; }

is "$(field '["content"]')" "tok0 tok1 tok2 " "sdk: non-streaming content"
is "$(field '["model"]')" mock-ok "sdk: non-streaming model"
is "$(field '["usage"]["completion_tokens"]')" 3 "sdk: non-streaming usage"
is "$(field '["stream_text"]')" "tok0 tok1 tok2 tok3 " "sdk: streamed text assembled"
is "$(field '["stream_usage"]["completion_tokens"]')" 4 "sdk: streamed usage chunk"
is "$(field '["error_status"]')" 404 "sdk: unknown model -> 404 APIError"
is "$(field '["error_code"]')" model_not_found "sdk: error code parsed by the client"
done_testing
