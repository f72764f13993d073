#!/bin/bash
# t0887-output-guard.sh: the answer's side of a policy, under every front
# end. Placeholders that redact put in a request come back restored in the
# answer, whole or streamed, even when the upstream cuts a placeholder over
# several events (the mock's say=1 answers with what it was sent, piece=K
# characters an event). Output checks find a card number, e-mail or phone
# the model itself writes, cut over events as small as one character: under
# output = redact the client never sees the value; under output = stop the
# stream ends with finish_reason content_filter, an error event and [DONE],
# no byte of the value sent, and what was streamed is billed. The same
# through an Anthropic provider (translated events).
. "$(dirname "$0")/lib.sh"

setup_tmp
use_binary_copies
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0887
export LLMGATE_MASTER_KEY=sk-master-t0887-secret-key
CONF=$TMPDIR_T/llmgate.ini
write_mock_gateway "$CONF"
cat >>"$CONF" <<EOF
[provider anth]
type = anthropic
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
match = claude-*

[policy restore]
pii = redact
restore = on

[policy outredact]
pii = log
output = redact

[policy outstop]
pii = log
output = stop

[model say3]
provider = mock
upstream = mock@say=1,piece=3
input_price = 1.00
output_price = 2.00

[model say1]
provider = mock
upstream = mock@say=1,piece=1
input_price = 1.00
output_price = 2.00

[model say7]
provider = mock
upstream = mock@say=1,piece=7
input_price = 1.00
output_price = 2.00

[model claude-say]
provider = anth
upstream = claude-mock@say=1,piece=2
input_price = 1.00
output_price = 2.00
max_tokens = 1000
EOF
admin recover >/dev/null || bail "llmgate-admin recover failed"
create_key K_RESTORE --name restore-key --policy restore || bail "no key"
create_key K_RED --name outredact-key --policy outredact || bail "no key"
create_key K_STOP --name outstop-key --policy outstop || bail "no key"

EMAIL=ivan.petrov@example.ru
PHONE='+7 (912) 345-67-89'
CARD='4111 1111 1111 1111'
TEXT="Напишите $EMAIL, позвоните $PHONE, оплата картой $CARD, спасибо."

# guard MODE KEY MODEL TEXT [stream]: one request through the gateway; prints
# one JSON line: status, the answer's text (contents concatenated), the
# finish reasons, the error event's code, whether [DONE] came, the events.
guard() {
	python3 - "$GW_URL" "$@" <<'EOF'
import json, sys, http.client, urllib.parse
url, key, model, text = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
stream = len(sys.argv) > 5 and sys.argv[5] == "stream"
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
body = {"model": model, "messages": [{"role": "user", "content": text}]}
if stream:
    body["stream"] = True
c.request("POST", u.path + "/v1/chat/completions", json.dumps(body),
          {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
r = c.getresponse()
raw = r.read().decode("utf-8", "replace")
out = {"status": r.status, "text": "", "finish": [], "error": None, "done": False,
       "events": 0, "raw": raw}
if not stream:
    try:
        d = json.loads(raw)
        for ch in d.get("choices", []):
            out["text"] += ch["message"].get("content") or ""
            out["finish"].append(ch.get("finish_reason"))
        if "error" in d:
            out["error"] = d["error"].get("code")
    except ValueError:
        pass
else:
    for line in raw.split("\n"):
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            out["done"] = True
            continue
        out["events"] += 1
        d = json.loads(data)
        if "error" in d:
            out["error"] = d["error"].get("code")
            continue
        for ch in d.get("choices", []):
            out["text"] += ch.get("delta", {}).get("content") or ""
            if ch.get("finish_reason"):
                out["finish"].append(ch["finish_reason"])
print(json.dumps(out))
EOF
}

# The digits of s (a card or phone cut by spaces is still its digits).
digits() { tr -cd '0-9' <<<"$1"; }

# last_forwarded: the text of the last user message the mock received.
last_forwarded() {
	mock_log | jx '[m for m in d["log"] if m["path"].endswith(("/chat/completions", "/messages"))][-1]["body"]["messages"][-1]["content"]'
}

scenario() {
	local out got up m

	# Restore: the upstream sees placeholders, the client its own values.
	for m in say3 say1 claude-say; do
		for mode in plain stream; do
			mock_clear
			out=$(guard "$K_RESTORE" "$m" "$TEXT" "$mode")
			up=$(last_forwarded)
			is "$(jx 'd["status"]' <<<"$out")" 200 "$SERVER_KIND: $m $mode: restore answered 200"
			unlike "$up" "$EMAIL|$(digits "$CARD")|912" \
			    "$SERVER_KIND: $m $mode: no value left the gateway ($up)"
			like "$up" '\[EMAIL_1\].*\[PHONE_1\].*\[CARD_1\]' \
			    "$SERVER_KIND: $m $mode: the upstream got the placeholders"
			is "$(jx 'd["text"]' <<<"$out")" "$TEXT" \
			    "$SERVER_KIND: $m $mode: the answer has the client's values back"
		done
	done

	# Output redact: the model writes the values (input only logged).
	for m in say1 say7 claude-say; do
		for mode in plain stream; do
			out=$(guard "$K_RED" "$m" "$TEXT" "$mode")
			got=$(jx 'd["text"]' <<<"$out")
			is "$(jx 'd["status"]' <<<"$out")" 200 "$SERVER_KIND: $m $mode: output redact answered 200"
			unlike "$(digits "$got")" "$(digits "$CARD")|9123456789" \
			    "$SERVER_KIND: $m $mode: no card or phone in the answer ($got)"
			unlike "$got" "$EMAIL" "$SERVER_KIND: $m $mode: no e-mail in the answer"
			like "$got" '^Напишите \[EMAIL_[0-9]+\], позвоните \[PHONE_[0-9]+\], оплата картой \[CARD_[0-9]+\], спасибо\.$' \
			    "$SERVER_KIND: $m $mode: the rest of the answer as written"
		done
	done

	# Output stop: the text before the first finding, then the end.
	for m in say1 say7 claude-say; do
		out=$(guard "$K_STOP" "$m" "$TEXT" stream)
		got=$(jx 'd["text"]' <<<"$out")
		is "$got" "Напишите " "$SERVER_KIND: $m: stop: only the text before the e-mail was sent"
		is "$(jx 'd["finish"]' <<<"$out")" '["content_filter"]' "$SERVER_KIND: $m: finish_reason content_filter"
		is "$(jx 'd["error"]' <<<"$out")" policy_violation "$SERVER_KIND: $m: an error event policy_violation"
		is "$(jx 'd["done"]' <<<"$out")" true "$SERVER_KIND: $m: then [DONE]"
		unlike "$(jx 'd["raw"]' <<<"$out")" "ivan|petrov" "$SERVER_KIND: $m: no byte of the e-mail in the stream"
	done
	out=$(guard "$K_STOP" say3 "$TEXT")
	is "$(jx 'd["text"]' <<<"$out")" "Напишите " "$SERVER_KIND: stop, not streamed: the answer is cut before the finding"
	is "$(jx 'd["finish"]' <<<"$out")" '["content_filter"]' "$SERVER_KIND: ... finish_reason content_filter"
}

for_each_server "$CONF" scenario

# The records: every stopped or redacted answer billed, findings named.
rows=$(admin usage --rows --key outstop-key)
is "$(jq -s 'map(select(.status == 200 and .cost_micro_usd > 0)) | length' <<<"$rows")" \
    "$(jq -s length <<<"$rows")" "every stopped answer billed ($(jq -s length <<<"$rows") rows)"
done_testing
