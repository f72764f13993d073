#!/usr/bin/python3
"""route-property.py - random, often malformed, bodies for /v1/responses or
/v1/completions against a running gateway: every answer must be a 200 (a
well-formed answer, or a complete stream) or a 4xx in the OpenAI error shape;
never a 5xx, a crash or a hang.

Usage: python3 t/route-property.py URL KEY ROUTE(responses|completions) MODEL N SEED
Prints one line per failure and "checked N" at the end; exits 1 on a failure.
"""
import json, random, sys, urllib.request, urllib.error

url, key, route, model, n, seed = sys.argv[1:7]
rng = random.Random(int(seed))

def text():
    return rng.choice(["hi", "", "MOCK{say=1} x", "é\u2028\"\\", "a@b.example",
                       "MOCK{tool=1}", "MOCK{reasoning=1}", "x" * rng.randint(0, 300)])

def junk(depth=0):
    c = rng.randint(0, 7 if depth < 3 else 4)
    return [lambda: None, lambda: True, lambda: rng.randint(-5, 5), lambda: 1.5, text,
            lambda: [junk(depth + 1) for _ in range(rng.randint(0, 3))],
            lambda: {text(): junk(depth + 1)},
            lambda: {"type": rng.choice(["input_text", "output_text", "text", "input_image",
                                         "x"]), "text": junk(depth + 1)}][c]()

def part():
    return rng.choice([
        {"type": "input_text", "text": text()}, {"type": "output_text", "text": text()},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
        {"type": "refusal", "refusal": text()}, junk()])

def item():
    k = rng.randint(0, 6)
    if k == 0:
        return {"role": rng.choice(["user", "assistant", "system", "developer", "tool", 3]),
                "content": rng.choice([text(), [part() for _ in range(rng.randint(0, 3))], junk()])}
    if k == 1:
        return {"type": "message", "role": rng.choice(["user", "assistant"]),
                "content": [part() for _ in range(rng.randint(0, 3))]}
    if k == 2:
        it = {"type": "function_call", "call_id": rng.choice(["c1", "c2", 5]),
              "name": rng.choice(["f", "g", None]),
              "arguments": rng.choice(["{}", '{"a":1}', {"a": 1}, 7, "{broken"])}
        if rng.random() < 0.2:
            del it[rng.choice(list(it))]
        return it
    if k == 3:
        return {"type": "function_call_output", "call_id": rng.choice(["c1", "c9", None]),
                "output": rng.choice([text(), [part()], junk()])}
    if k == 4:
        return {"type": "reasoning", "summary": []}
    if k == 5:
        return {"type": rng.choice(["web_search_call", "custom_tool_call", "item_reference"])}
    return junk()

def responses_body():
    b = {"model": model}
    if rng.random() < 0.95:
        b["input"] = rng.choice([text(), [item() for _ in range(rng.randint(0, 5))], junk()])
    for k, gen in (("instructions", lambda: rng.choice([text(), junk()])),
                   ("tools", lambda: rng.choice([[{"type": "function", "name": "f",
                                                   "parameters": {"type": "object"}}],
                                                 [{"type": "web_search"}], junk()])),
                   ("tool_choice", lambda: rng.choice(["auto", "none", "required",
                                                       {"type": "function", "name": "f"}, junk()])),
                   ("max_output_tokens", lambda: rng.choice([16, 0, -1, "9", None])),
                   ("temperature", lambda: rng.choice([0, 0.5, 3, "x"])),
                   ("stream", lambda: rng.choice([True, False, "yes"])),
                   ("text", lambda: rng.choice([{"format": {"type": "json_object"}},
                                                {"format": {"type": "json_schema", "name": "s",
                                                            "schema": {"type": "object"}}}, junk()])),
                   ("store", lambda: rng.choice([False, None, True])),
                   ("metadata", lambda: junk())):
        if rng.random() < 0.3:
            b[k] = gen()
    return b

def completions_body():
    b = {"model": model}
    if rng.random() < 0.95:
        b["prompt"] = rng.choice([text(), [text()], [text(), text()], [[1, 2]], junk()])
    for k, gen in (("suffix", lambda: rng.choice([text(), None, junk()])),
                   ("max_tokens", lambda: rng.choice([16, 0, -1, "9", None])),
                   ("stream", lambda: rng.choice([True, False, "yes"])),
                   ("stop", lambda: rng.choice(["\n", ["a", "b"], junk()])),
                   ("n", lambda: rng.choice([1, 2, 0, "x"])),
                   ("echo", lambda: rng.choice([False, True, None])),
                   ("stream_options", lambda: rng.choice([{"include_usage": True}, junk()]))):
        if rng.random() < 0.3:
            b[k] = gen()
    return b

bad = 0
seen = {}
for i in range(int(n)):
    body = responses_body() if route == "responses" else completions_body()
    data = json.dumps(body).encode()
    if rng.random() < 0.05:
        data = data[:rng.randint(0, len(data))]       # cut anywhere
    req = urllib.request.Request(url + "/v1/" + route, data=data, method="POST", headers={
        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    except Exception as e:     # a reset, a hang: the worst
        print("body %d: %r -> %s" % (i, data[:200], e))
        bad += 1
        continue
    seen[status] = seen.get(status, 0) + 1
    why = None
    if status == 200:
        if ctype.startswith("text/event-stream"):
            end = b"event: response.completed" if route == "responses" else b"data: [DONE]"
            if end not in raw and b"response.incomplete" not in raw:
                why = "stream without its end"
        else:
            try:
                o = json.loads(raw)
                if o.get("object") not in ("response", "text_completion"):
                    why = "not a response object"
            except ValueError:
                why = "200 not JSON"
    elif 400 <= status < 500:
        try:
            e = json.loads(raw)["error"]
            if sorted(e) != ["code", "message", "param", "type"]:
                why = "error shape"
        except (ValueError, KeyError, TypeError):
            why = "4xx not in the OpenAI shape"
    else:
        why = "status %d" % status
    if why:
        bad += 1
        print("body %d: %r -> %d %s: %r" % (i, data[:300], status, why, raw[:300]))
print("checked %s: %s" % (n, " ".join("%d: %d" % kv for kv in sorted(seen.items()))))
sys.exit(1 if bad else 0)
