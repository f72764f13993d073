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

[model saytool]
provider = mock
upstream = mock@say=1,tool=1,piece=4
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
out = {"status": r.status, "text": "", "args": "", "finish": [], "error": None,
       "done": False, "events": 0, "raw": raw}
if not stream:
    try:
        d = json.loads(raw)
        for ch in d.get("choices", []):
            out["text"] += ch["message"].get("content") or ""
            for tc in ch["message"].get("tool_calls") or []:
                out["args"] += tc["function"]["arguments"]
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
            for tc in ch.get("delta", {}).get("tool_calls") or []:
                out["args"] += tc.get("function", {}).get("arguments") or ""
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

# random_texts: 60 generated texts with e-mails, phones, Luhn-valid cards,
# SNILS and INN numbers (valid checksums) among words, each asked of a
# random model (pieces of 1, 3 or 7 characters; the Anthropic one in 2),
# streamed or not: under restore the answer is the text, under output
# redact no generated value is in the answer.
random_texts() {
	local bad
	bad=$(python3 - "$GW_URL" "$K_RESTORE" "$K_RED" 2>"$TMPDIR_T/random.txt" <<'EOF'
import json, random, sys, http.client, urllib.parse
url, krestore, kred = sys.argv[1:4]
rnd = random.Random(885)
def luhn(prefix, n):
    d = [int(c) for c in prefix] + [rnd.randrange(10) for _ in range(n - len(prefix) - 1)]
    s = 0
    for i, x in enumerate(reversed(d)):
        if i % 2 == 0:
            x *= 2
            x -= 9 if x > 9 else 0
        s += x
    return "".join(map(str, d + [(10 - s % 10) % 10]))
def snils():
    while True:
        d = [rnd.randrange(10) for _ in range(9)]
        n = "".join(map(str, d))
        if n <= "001001998":
            continue
        s = sum(x * (9 - i) for i, x in enumerate(d))
        c = s % 101 if s > 101 else s
        c = 0 if c in (100, 101) else c
        return "%s-%s-%s %02d" % (n[:3], n[3:6], n[6:], c)
def inn():
    d = [rnd.randrange(1, 10)] + [rnd.randrange(10) for _ in range(8)]
    w = [2, 4, 10, 3, 5, 9, 4, 6, 8]
    return "".join(map(str, d + [sum(a * b for a, b in zip(w, d)) % 11 % 10]))
def value():
    k = rnd.randrange(5)
    if k == 0:
        return "%s.%s@%s.ru" % (rnd.choice(["ivan", "olga", "petr"]), rnd.randrange(99),
                                rnd.choice(["mail", "corp", "example"]))
    if k == 1:
        return "+7 (9%02d) %03d-%02d-%02d" % (rnd.randrange(100), rnd.randrange(1000),
                                              rnd.randrange(100), rnd.randrange(100))
    if k == 2:
        c = luhn(rnd.choice(["4", "51", "22"]), 16)
        return " ".join(c[i:i + 4] for i in range(0, 16, 4))
    if k == 3:
        return snils()
    return inn()
def digits(s):
    return "".join(ch for ch in s if ch.isdigit())
words = "отчёт клиент please send the счёт to договор номер and then".split()
u = urllib.parse.urlparse(url)
bad = 0
for i in range(60):
    vals, parts = [], []
    for _ in range(rnd.randrange(1, 5)):
        parts += rnd.sample(words, 3)
        v = value()
        vals.append(v)
        parts.append(v)
    parts.append(rnd.choice(words))
    text = " ".join(parts)
    model = rnd.choice(["say1", "say3", "say7", "claude-say"])
    stream = rnd.random() < 0.7
    key = krestore if i % 2 == 0 else kred
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("POST", u.path + "/v1/chat/completions", json.dumps(body),
              {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse()
    raw = r.read().decode()
    got = ""
    if stream:
        for line in raw.split("\n"):
            if line.startswith("data: {"):
                for ch in json.loads(line[6:]).get("choices", []):
                    got += ch.get("delta", {}).get("content") or ""
    elif r.status == 200:
        got = json.loads(raw)["choices"][0]["message"]["content"]
    if r.status != 200:
        ok = False
    elif key == krestore:
        ok = got == text
    else:
        ok = not any(v in got or (len(digits(v)) >= 10 and digits(v) in digits(got))
                     for v in vals)
    if not ok:
        bad += 1
        print("%s %s stream=%s status=%d\n  sent %r\n  got  %r" % (
            "restore" if key == krestore else "redact", model, stream, r.status, text, got),
            file=sys.stderr)
print(bad)
EOF
)
	is "$bad" 0 "60 generated texts cut at random: restored exactly, or no value shown" ||
	    diag "$(head -c 4000 "$TMPDIR_T/random.txt")"
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

	# A tool call's arguments: restored too, cut over events as they come.
	for mode in plain stream; do
		out=$(guard "$K_RESTORE" saytool "$TEXT" "$mode")
		is "$(jx 'json.loads(d["args"])["note"]' <<<"$out")" "$TEXT" \
		    "$SERVER_KIND: saytool $mode: the tool call's arguments have the client's values back"
	done

	# Generated texts, cut at random: restored exactly, or no value shown.
	on_first_server && random_texts

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

# The answer's side under valgrind (or ASan), one CGI request each:
# restore streamed a character at a time, a tool call's arguments, output
# redact, output stop streamed and whole.
vg() {	# LABEL KEY MODEL STREAM
	local log=$TMPDIR_T/vg.$1 out
	printf '{"model":"%s","stream":%s,"messages":[{"role":"user","content":"%s"}]}' \
	    "$3" "$4" "$TEXT" >"$TMPDIR_T/vg.json"
	out=$(export REQUEST_METHOD=POST REQUEST_URI=/v1/chat/completions \
	    CONTENT_LENGTH=$(wc -c <"$TMPDIR_T/vg.json") HTTP_AUTHORIZATION="Bearer $2" \
	    LLMGATE_CONFIG="$CONF"; memcheck "$log" "$LLMGATE" <"$TMPDIR_T/vg.json" \
	    2>"$log.stderr")
	is "$?" 0 "memcheck $1: exit status"
	ok "memcheck $1: no errors, nothing lost" memcheck_clean "$log" ||
	    diag "$(head -c 3000 "$log")"
	like "$out" '^Status: 200' "memcheck $1: answered 200"
}
vg restore-stream "$K_RESTORE" say1 true
vg restore-tool "$K_RESTORE" saytool true
vg redact-stream "$K_RED" say1 true
vg redact-whole "$K_RED" say7 false
vg stop-stream "$K_STOP" say1 true
vg stop-whole "$K_STOP" say3 false

# The rows name what was found in the answer and what was done, never a value.
row=$(admin usage --rows --key outstop-key | tail -n 1)
is "$(jx 'd["guard_out_found"]' <<<"$row")" email "a stopped answer's row: guard_out_found email"
is "$(jx 'd["guard_out_acted"]' <<<"$row")" block "... guard_out_acted block"
row=$(admin usage --rows --key outredact-key | tail -n 1)
like "$(jx 'd["guard_out_found"]' <<<"$row")" 'email' "a redacted answer's row names its kinds ($(jx 'd["guard_out_found"]' <<<"$row"))"
is "$(jx 'd["guard_out_acted"]' <<<"$row")" redact "... guard_out_acted redact"
is "$(admin usage --rows | grep -cE 'ivan\.petrov|4111 1111|912\) 345')" 0 "no value in any usage row"

# The records: every stopped or redacted answer billed, findings named.
rows=$(admin usage --rows --key outstop-key)
is "$(jq -s 'map(select(.status == 200 and .cost_micro_usd > 0)) | length' <<<"$rows")" \
    "$(jq -s length <<<"$rows")" "every stopped answer billed ($(jq -s length <<<"$rows") rows)"
done_testing
