#!/usr/bin/python3
"""limits-property.py: the property "what is forwarded can never cost more than
what was reserved", checked over generated chat request bodies (t0880-limits.sh).

  limits-property.py send URL KEY MODEL MOCK_URL OUT.json [--sample N --seed S]
      [--threads T] [--stream-only]
    Generates every combination of the completion-limit fields (absent, null, 0,
    small, larger than the model's cap, huge; max_tokens and max_completion_tokens
    both, in conflict), n, tools, images and stream (or a seeded sample of N of
    them), sends each to URL/v1/chat/completions with KEY, and writes, for each,
    its case, the HTTP status, X-Request-Id and the body the mock upstream was
    actually sent (from the mock's log, by a marker in the prompt).

  limits-property.py inputs URL KEY OUT.json
    Embeddings bodies (a string, ASCII or many-byte UTF-8, escaped or raw; a list
    of strings; token ids; lists of token ids) to model mock-emb, whose upstream
    reports the most tokens an honest tokenizer could (one per UTF-8 byte, one
    per id), and image bodies (n absent, null, 1, 4) to mock-img; writes the
    statuses and request ids.

  limits-property.py check-inputs OUT.json ROWS.jsonl
    Every embeddings and image request served, its cost > 0 and within its
    reservation; prints "name: count" lines.

  limits-property.py check OUT.json ROWS.jsonl CAP
    Checks each case against the gateway's usage rows (llmgate-admin usage --rows)
    and prints "name: count" lines for the test to assert, then every violation.

The mock model is greedy (MOCK{greedy=1}): it generates the LARGEST limit it was
sent times n, as an upstream that honours the laxest field would.
"""
import itertools
import json
import random
import sys
import threading
import urllib.error
import urllib.request

LIMITS = ["absent", None, 0, 1, 7, 5000, 100000000]
NS = ["absent", None, 1, 3]
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/x8AAwMCAO+ip1sAAAAASUVORK5CYII="
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def cases():
    for mt, mct, n, tools, images, stream in itertools.product(
            LIMITS, LIMITS, NS, (False, True), (0, 2), (False, True)):
        yield {"max_tokens": mt, "max_completion_tokens": mct, "n": n,
               "tools": tools, "images": images, "stream": stream}


def body(case, i, model):
    marker = "case-%d MOCK{greedy=1}" % i
    content = marker
    if case["images"]:
        content = [{"type": "text", "text": marker}] + \
            [{"type": "image_url", "image_url": {"url": IMAGE}}] * case["images"]
    b = {"model": model, "messages": [{"role": "user", "content": content}]}
    for f in ("max_tokens", "max_completion_tokens", "n"):
        if case[f] != "absent":
            b[f] = case[f]
    if case["tools"]:
        b["tools"] = TOOLS
    if case["stream"]:
        b["stream"] = True
    return b


def post(url, key, b):
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(b).encode(),
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return r.status, r.headers.get("X-Request-Id", "")
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, e.headers.get("X-Request-Id", "")


def mock_log(mock_url):
    with urllib.request.urlopen(mock_url + "/_mock/stats", timeout=30) as r:
        return json.load(r)["log"]


def send(argv):
    url, key, model, mock_url, out = argv[:5]
    opts = dict(zip(argv[5::2], argv[6::2]))
    all_cases = list(cases())
    if "--sample" in opts:
        rnd = random.Random(int(opts.get("--seed", "1")))
        all_cases = rnd.sample(all_cases, int(opts["--sample"]))
    threads = int(opts.get("--threads", "4"))
    results = []
    # The mock keeps the last 500 log entries: batches of 400.
    for start in range(0, len(all_cases), 400):
        batch = list(enumerate(all_cases[start:start + 400], start))
        urllib.request.urlopen(urllib.request.Request(mock_url + "/_mock/reset",
                                                      data=b"", method="POST")).read()
        got = {}
        work = list(batch)
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    if not work:
                        return
                    i, c = work.pop()
                got[i] = post(url, key, body(c, i, model))
        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        forwarded = {}
        for e in mock_log(mock_url):
            try:
                fb = json.loads(e["body"]) if isinstance(e["body"], str) else e["body"]
            except (TypeError, ValueError):
                continue
            text = json.dumps(fb)
            for i, _ in batch:
                if '"case-%d MOCK' % i in text:
                    forwarded.setdefault(i, []).append(fb)
        for i, c in batch:
            status, rid = got[i]
            results.append({"i": i, "case": c, "status": status, "request_id": rid,
                            "forwarded": forwarded.get(i, [])})
    with open(out, "w") as f:
        json.dump(results, f)
    print(len(results))


def input_bodies():
    texts = ["hello world", "\u4e2d\u6587\U0001F600" * 50, "x" * 3000]
    for i, t in enumerate(texts):
        yield "emb", {"model": "mock-emb", "input": t + " %d" % i}
        yield "emb", {"model": "mock-emb", "input": [t, t[::-1], "z"]}
    yield "emb", {"model": "mock-emb", "input": list(range(1, 2000))}
    yield "emb", {"model": "mock-emb", "input": [[1, 2, 3], list(range(900))]}
    for n in ("absent", None, 1, 4):
        b = {"model": "mock-img", "prompt": "a cat %r" % (n,)}
        if n != "absent":
            b["n"] = n
        yield "img", b


def inputs(argv):
    url, key, out = argv[:3]
    results = []
    for i, (kind, b) in enumerate(input_bodies()):
        path = "/v1/embeddings" if kind == "emb" else "/v1/images/generations"
        # Half of the bodies escape every non-ASCII character, half send UTF-8.
        data = json.dumps(b, ensure_ascii=bool(i % 2)).encode()
        req = urllib.request.Request(url + path, data=data, headers={
            "Authorization": "Bearer " + key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
                status, rid = r.status, r.headers.get("X-Request-Id", "")
        except urllib.error.HTTPError as e:
            e.read()
            status, rid = e.code, e.headers.get("X-Request-Id", "")
        results.append({"i": i, "kind": kind, "status": status, "request_id": rid})
    with open(out, "w") as f:
        json.dump(results, f)
    print(len(results))


def check_inputs(argv):
    results = json.load(open(argv[0]))
    rows = {}
    for line in open(argv[1]):
        if line.strip():
            r = json.loads(line)
            rows[r["request_id"]] = r
    count = {"bodies": len(results), "served": 0, "within": 0, "flagged": 0}
    for res in results:
        r = rows.get(res["request_id"])
        if res["status"] != 200 or r is None:
            print("BAD %s" % json.dumps(res))
            continue
        count["served"] += 1
        if 0 < r["cost_micro_usd"] <= r["reserved_micro_usd"]:
            count["within"] += 1
        else:
            print("BAD cost %d reserved %d: %s" % (r["cost_micro_usd"],
                  r["reserved_micro_usd"], json.dumps(res)))
        count["flagged"] += bool(r["over_reservation"])
    for k, v in count.items():
        print("%s: %d" % (k, v))


def expected_limit(case, cap):
    given = [case[f] for f in ("max_tokens", "max_completion_tokens")
             if isinstance(case[f], int) and case[f] > 0]
    return min(given + [cap])


def check(argv):
    results = json.load(open(argv[0]))
    rows = {}
    for line in open(argv[1]):
        line = line.strip()
        if line:
            r = json.loads(line)
            rows.setdefault(r["request_id"], []).append(r)
    cap = int(argv[2])
    count = {"bodies": len(results), "served": 0, "refused_400": 0, "other_status": 0,
             "refused_forwarded": 0, "served_once": 0, "one_limit_field": 0,
             "limit_as_decided": 0, "n_kept": 0, "rows": 0, "cost_within_reservation": 0,
             "over_reservation_flags": 0, "greedy_billed": 0}
    bad = []
    for res in results:
        c, fw = res["case"], res["forwarded"]
        zero = any(c[f] == 0 for f in ("max_tokens", "max_completion_tokens"))
        if res["status"] == 400:
            count["refused_400"] += 1
            if fw:
                count["refused_forwarded"] += 1
                bad.append(("400 yet forwarded", res))
            if not zero:
                bad.append(("400 for a valid body", res))
            continue
        if res["status"] != 200:
            count["other_status"] += 1
            bad.append(("status %d" % res["status"], res))
            continue
        count["served"] += 1
        if zero:
            bad.append(("a limit of 0 was served", res))
        if len(fw) == 1:
            count["served_once"] += 1
        else:
            bad.append(("forwarded %d times" % len(fw), res))
            continue
        f = fw[0]
        fields = [k for k in ("max_tokens", "max_completion_tokens") if k in f]
        if len(fields) == 1:
            count["one_limit_field"] += 1
        else:
            bad.append(("limit fields %s" % fields, res))
        want = expected_limit(c, cap)
        if all(f.get(k) == want for k in fields) and fields:
            count["limit_as_decided"] += 1
        else:
            bad.append(("limit %s, want %d" % ([f.get(k) for k in fields], want), res))
        want_n = c["n"] if isinstance(c["n"], int) else None
        if f.get("n") == want_n or (want_n is None and f.get("n") is None):
            count["n_kept"] += 1
        else:
            bad.append(("n %r, want %r" % (f.get("n"), want_n), res))
        rs = rows.get(res["request_id"], [])
        if len(rs) != 1:
            bad.append(("%d usage rows" % len(rs), res))
            continue
        r = rs[0]
        count["rows"] += 1
        n = c["n"] if isinstance(c["n"], int) and c["n"] > 1 else 1
        limits = [f[k] for k in fields if isinstance(f.get(k), int)]
        if r["completion_tokens"] == (max(limits) if limits else 100000) * n:
            count["greedy_billed"] += 1
        else:
            bad.append(("billed %d completion tokens" % r["completion_tokens"], res))
        if r["cost_micro_usd"] <= r["reserved_micro_usd"]:
            count["cost_within_reservation"] += 1
        else:
            bad.append(("cost %d > reserved %d" % (r["cost_micro_usd"],
                        r["reserved_micro_usd"]), res))
        if r.get("over_reservation"):
            count["over_reservation_flags"] += 1
    for k, v in count.items():
        print("%s: %d" % (k, v))
    for why, res in bad[:20]:
        print("BAD %s: %s" % (why, json.dumps(res)[:600]))


if __name__ == "__main__":
    if len(sys.argv) >= 7 and sys.argv[1] == "send":
        send(sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "inputs":
        inputs(sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "check-inputs":
        check_inputs(sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        check(sys.argv[2:])
    else:
        sys.exit(__doc__)
