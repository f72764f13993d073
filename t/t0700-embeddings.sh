#!/bin/bash
# t0700-embeddings.sh: POST /v1/embeddings to OpenAI-compatible and Gemini
# providers (floats, base64 made by the gateway, batches, dimensions, the
# exact Gemini request, errors, fallback after 503, the official openai npm
# client) and POST /v1/images/generations (pass-through, price per image),
# through lighttpd, Apache mod_fcgid and the CGI server.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=sk-emb-mock-secret LLMGATE_MASTER_KEY=sk-master-t0700
CONF=$TMPDIR_T/llmgate.ini
cat >"$CONF" <<EOF
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY
; Every front end counts the same retries of emb-down: no circuit
; breakers here (t0835 tests them).
breaker = off

[retry]
attempts = 2
backoff_ms = 50
backoff_max_ms = 100

[provider oai]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
header = X-Test-Extra: t0700

[provider gem]
type = gemini
base_url = $MOCK_URL/v1beta
api_key = env:MOCK_API_KEY

[model emb-small]
provider = oai
upstream = text-embedding-3-small
input_price = 0.02

[model emb-floats]
provider = oai
upstream = text-embedding-3-small@float_only=1

[model emb-down]
provider = oai
upstream = text-embedding-3-small@status=503
fallback = gem-emb

[model gem-emb]
provider = gem
upstream = gemini-embedding-001
input_price = 150

[model gem-missing]
provider = gem
upstream = missing-embedder

[model img]
provider = oai
upstream = dall-e-3
image_price = 0.04

[model gem-img]
provider = gem
upstream = imagen-3
EOF

setup_sdk

post() {	# path body -> BODY, STATUS, HDRS
	HDRS=$TMPDIR_T/h
	BODY=$(gw_curl -D "$HDRS" -w '\n%{http_code}' -H 'Content-Type: application/json' \
	    --data-binary "$2" "$GW_URL$1")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
emb() { post /v1/embeddings "$1"; }
j() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null; }
hdr() { tr -d '\r' <"$HDRS" | sed -n "s/^$1: //p"; }
last_upstream() { curl -sS "$MOCK_URL/_mock/stats" | j "$1"; }
reset_mock() { curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null; }

# vectors OUT SCALE LEN... : the mock's vectors (4 values each) as Python
# lists, one per length, for inputs 0, 1, ...
vectors() {
	python3 -c '
import sys
s = float(sys.argv[1])
print([[((int(n) + 3 * j + i) % 16 - 8) / s for j in range(4)] for i, n in enumerate(sys.argv[2:])])' "$@"
}
# The data[i].embedding of BODY, decoded from base64 float32 when a string.
decoded() {
	echo "$BODY" | python3 -c '
import base64, json, struct, sys
out = []
for d in json.load(sys.stdin)["data"]:
    e = d["embedding"]
    if isinstance(e, str):
        raw = base64.b64decode(e)
        e = list(struct.unpack("<%df" % (len(raw) // 4), raw))
    out.append(e)
print(out)'
}
kinds() { echo "$BODY" | j '[type(x["embedding"]).__name__ for x in d["data"]]'; }
# usage_line MODEL: the gateway's last usage line for MODEL.
usage_line() { grep -a "usage id=.* model=$1 " "$SERVER_LOG" | tail -n 1; }
usage_logged() { [ -n "$(usage_line "$1")" ]; }	# polled: the server may log it late

scenarios() {
	local k=$SERVER_KIND out want

	# OpenAI-compatible, floats: passed through with the upstream model id.
	reset_mock
	emb '{"model":"emb-small","input":"hello world","encoding_format":"float"}'
	is "$STATUS" 200 "$k: floats 200"
	is "$(echo "$BODY" | j 'd["object"], d["model"], d["data"][0]["object"], d["data"][0]["index"]')" \
	    "('list', 'emb-small', 'embedding', 0)" "$k: OpenAI list shape, served model name"
	is "$(echo "$BODY" | j 'd["data"][0]["embedding"]')" "$(vectors 16 11 | j 'd[0]')" "$k: the provider's floats"
	is "$(echo "$BODY" | j 'd["usage"]')" "{'prompt_tokens': 3, 'total_tokens': 3}" "$k: the provider's usage"
	is "$(hdr X-Llmgate-Model)/$(hdr X-Llmgate-Provider)/$(hdr X-Llmgate-Attempts)" \
	    emb-small/oai/1 "$k: X-Llmgate headers"
	is "$(last_upstream 'd["log"][-1]["path"], d["log"][-1]["body"]')" \
	    "('/v1/embeddings', {'input': 'hello world', 'encoding_format': 'float', 'model': 'text-embedding-3-small'})" \
	    "$k: upstream got the request with the upstream model id"
	is "$(last_upstream 'd["log"][-1]["headers"]["authorization"], d["log"][-1]["headers"]["x-test-extra"]')" \
	    "('Bearer $MOCK_API_KEY', 't0700')" "$k: bearer key and the provider's extra header"
	wait_until 15 usage_logged emb-small
	like "$(usage_line emb-small)" 'served=emb-small provider=oai status=200 attempts=1 stream=0 prompt=3 completion=0 cached=0 estimated=0 cost_micro_usd=1 ' \
	    "$k: usage line priced at the input price"

	# base64 passed through from a provider that makes it.
	emb '{"model":"emb-small","input":["abc","defgh"],"encoding_format":"base64"}'
	is "$(kinds)" "['str', 'str']" "$k: provider base64 passed as strings"
	is "$(decoded)" "$(vectors 16 3 5)" "$k: provider base64 decodes to the mock's vectors"
	is "$(last_upstream 'd["log"][-1]["body"]["encoding_format"]')" base64 "$k: base64 asked upstream"

	# base64 from a provider that answers floats: the gateway encodes.
	emb '{"model":"emb-floats","input":["one","three","fifteen"],"encoding_format":"base64"}'
	is "$STATUS" 200 "$k: float-only provider 200"
	is "$(kinds)" "['str', 'str', 'str']" "$k: gateway base64 strings"
	is "$(decoded)" "$(vectors 16 3 5 7)" "$k: gateway base64 decodes to the provider's floats"
	is "$(echo "$BODY" | j '[x["index"] for x in d["data"]]')" "[0, 1, 2]" "$k: batch indexes in order"

	# Gemini, one string: embedContent, the exact body, x-goog-api-key.
	reset_mock
	post /v1/embeddings "$(cat "$top_srcdir/t/data/embeddings/gemini-single.openai.json")"
	is "$STATUS" 200 "$k: Gemini single 200"
	is "$(last_upstream 'd["log"][-1]["path"]')" /v1beta/models/gemini-embedding-001:embedContent \
	    "$k: Gemini embedContent URL"
	out=$(curl -sS "$MOCK_URL/_mock/stats" | python3 -c '
import json, sys
got = json.load(sys.stdin)["log"][-1]["body"]
print("same" if got == json.load(open(sys.argv[1])) else "differs: " + json.dumps(got))' \
	    "$top_srcdir/t/data/embeddings/gemini-single.gemini.json")
	is "$out" same "$k: upstream body is gemini-single.gemini.json"
	is "$(last_upstream 'd["log"][-1]["headers"].get("x-goog-api-key"), d["log"][-1]["headers"].get("authorization")')" \
	    "('$MOCK_API_KEY', None)" "$k: x-goog-api-key, no Authorization"
	is "$(echo "$BODY" | j 'd["data"][0]["embedding"]')" "$(vectors 32 28 | j 'd[0]')" "$k: Gemini values as floats"
	is "$(echo "$BODY" | j 'd["model"], d["usage"]')" "('gem-emb', {'prompt_tokens': 7, 'total_tokens': 7})" \
	    "$k: served model and estimated usage (28 characters / 4)"
	wait_until 15 usage_logged gem-emb
	like "$(usage_line gem-emb)" 'provider=gem status=200 attempts=1 stream=0 prompt=7 completion=0 cached=0 estimated=1 cost_micro_usd=1050 ' \
	    "$k: Gemini usage line: estimated tokens at the input price"

	# Gemini batch with dimensions: batchEmbedContents, outputDimensionality.
	post /v1/embeddings "$(cat "$top_srcdir/t/data/embeddings/gemini-batch.openai.json")"
	is "$STATUS" 200 "$k: Gemini batch 200"
	is "$(last_upstream 'd["log"][-1]["path"]')" /v1beta/models/gemini-embedding-001:batchEmbedContents \
	    "$k: Gemini batchEmbedContents URL"
	out=$(curl -sS "$MOCK_URL/_mock/stats" | python3 -c '
import json, sys
got = json.load(sys.stdin)["log"][-1]["body"]
print("same" if got == json.load(open(sys.argv[1])) else "differs: " + json.dumps(got))' \
	    "$top_srcdir/t/data/embeddings/gemini-batch.gemini.json")
	is "$out" same "$k: upstream body is gemini-batch.gemini.json"
	is "$(echo "$BODY" | j '[len(x["embedding"]) for x in d["data"]]')" "[8, 8]" "$k: dimensions -> outputDimensionality"
	out=$(echo "$BODY" | python3 -c '
import json, sys
got = json.load(sys.stdin)
print("same" if got == json.load(open(sys.argv[1])) else "differs: " + json.dumps(got))' \
	    "$top_srcdir/t/data/embeddings/gemini-batch.expected.json")
	is "$out" same "$k: answer is gemini-batch.expected.json"

	# Gemini with base64: the gateway encodes little-endian float32.
	emb '{"model":"gem-emb","input":["x","yy"],"encoding_format":"base64"}'
	is "$(kinds)" "['str', 'str']" "$k: Gemini base64 strings"
	is "$(decoded)" "$(vectors 32 1 2)" "$k: Gemini base64 decodes to Gemini's floats"

	# Errors in the OpenAI shape, naming the field.
	emb '{"model":"emb-small","input":42}'
	is "$STATUS/$(echo "$BODY" | j 'd["error"]["param"], d["error"]["type"]')" \
	    "400/('input', 'invalid_request_error')" "$k: input 42 -> 400 param input"
	emb '{"model":"emb-small","input":["a",{"b":1}]}'
	is "$STATUS/$(echo "$BODY" | j 'd["error"]["param"]')" "400/input[1]" "$k: bad member -> 400 param input[1]"
	emb '{"model":"emb-small","input":"a","encoding_format":"hex"}'
	is "$STATUS/$(echo "$BODY" | j 'd["error"]["param"]')" "400/encoding_format" "$k: encoding_format hex -> 400"
	emb '{"input":"a"}'
	is "$STATUS/$(echo "$BODY" | j 'd["error"]["param"]')" "400/model" "$k: no model -> 400 param model"
	emb '{"model":"nope-embedder","input":"a"}'
	is "$STATUS/$(echo "$BODY" | j 'd["error"]["code"]')" "404/model_not_found" "$k: unknown model -> 404"
	emb '{"model":"gem-emb","input":[1,2,3]}'
	is "$STATUS/$(echo "$BODY" | j 'd["error"]["param"]')" "400/input" "$k: token ids to Gemini -> 400 param input"
	emb '{"model":"gem-missing","input":"a"}'
	is "$STATUS" 404 "$k: Gemini 404 passed on"
	like "$(echo "$BODY" | j 'd["error"]["message"]')" 'missing-embedder is not found' "$k: Gemini error message kept"

	# 503 upstream: retried, then the fallback model serves.
	reset_mock
	emb '{"model":"emb-down","input":"fall back please"}'
	is "$STATUS" 200 "$k: 503 falls back"
	is "$(hdr X-Llmgate-Model)/$(hdr X-Llmgate-Provider)/$(hdr X-Llmgate-Attempts)" gem-emb/gem/3 \
	    "$k: served by the Gemini fallback after 2 tries"
	is "$(echo "$BODY" | j 'd["model"]')" gem-emb "$k: fallen-back answer names the model that served"
	is "$(last_upstream '[e["outcome"] for e in d["log"]]')" "['fault:status=503', 'fault:status=503', 'ok']" \
	    "$k: two 503s upstream, then Gemini"

	# The official client: base64 by default, decoded into Float32Array.
	for model in emb-small emb-floats gem-emb; do
		out=$(node "$SDK/embeddings.mjs" "$GW_URL/v1" "$LLMGATE_MASTER_KEY" "$model" 2>&1)
		case $model in gem-*) s=32 ;; *) s=16 ;; esac
		is "$(echo "$out" | j '[[float(x) for x in v] for v in d["vectors"]]')" "$(vectors $s 11 12)" \
		    "$k: sdk $model: base64 decoded to the provider's floats" || diag "sdk: $out"
		is "$(echo "$out" | j '[float(x) for x in d["floats"]]')" "$(vectors $s 8 | j 'd[0]')" \
		    "$k: sdk $model: encoding_format float"
		is "$(echo "$out" | j 'd["model"], d["usage"]["prompt_tokens"]')" "('$model', 6)" \
		    "$k: sdk $model: model and usage"
		case $model in
		gem-*)	is "$(last_upstream 'd["log"][-2]["body"]["requests"][1]["content"]')" \
			    "{'parts': [{'text': 'second input'}]}" "$k: sdk batch reached Gemini" ;;
		*)	is "$(last_upstream 'd["log"][-2]["body"]["encoding_format"]')" base64 \
			    "$k: sdk $model: the client asked for base64" ;;
		esac
	done

	# Images: passed through, priced per image returned.
	reset_mock
	post /v1/images/generations '{"model":"img","prompt":"a red fox","n":2,"size":"1024x1024"}'
	is "$STATUS" 200 "$k: images 200"
	is "$(echo "$BODY" | j 'len(d["data"]), d["data"][1]["url"], "created" in d')" \
	    "(2, 'https://images.mock/1.png', True)" "$k: n=2 -> 2 images passed back"
	is "$(last_upstream 'd["log"][-1]["path"], d["log"][-1]["body"]')" \
	    "('/v1/images/generations', {'prompt': 'a red fox', 'n': 2, 'size': '1024x1024', 'model': 'dall-e-3'})" \
	    "$k: images upstream request with the upstream model id"
	is "$(hdr X-Llmgate-Model)/$(hdr X-Llmgate-Attempts)" img/1 "$k: images X-Llmgate headers"
	wait_until 15 usage_logged img
	like "$(usage_line img)" 'served=img provider=oai status=200 attempts=1 stream=0 prompt=0 completion=0 cached=0 estimated=0 cost_micro_usd=80000 ' \
	    "$k: images usage line: 2 x \$0.04"
	post /v1/images/generations '{"model":"img","prompt":"a fox","response_format":"b64_json"}'
	is "$(echo "$BODY" | j 'd["data"][0]["b64_json"]')" bW9jay1wbmctMA== "$k: b64_json passed through"
	post /v1/images/generations '{"model":"gem-img","prompt":"a fox"}'
	is "$STATUS/$(echo "$BODY" | j 'd["error"]["message"], d["error"]["param"]')" \
	    "400/('image generation is not supported by provider type gemini', 'model')" \
	    "$k: images for a Gemini model -> 400"
	post /v1/images/generations '{"model":"img"}'
	is "$STATUS/$(echo "$BODY" | j 'd["error"]["param"]')" "400/prompt" "$k: images without prompt -> 400"
	unlike "$(cat "$SERVER_LOG")" "$MOCK_API_KEY" "$k: the provider key is never logged"
}

LLMGATE_SERVERS=${LLMGATE_SERVERS:-lighttpd apache cgi} for_each_server "$CONF" scenarios
done_testing
