"""mock_embeddings.py: t/mock-upstream.py plugin for embeddings and images.

Endpoints (logged in /_mock/stats like chat, MODELKEY = the model string)
  POST /v1/embeddings, /embeddings          OpenAI embeddings
  POST /v1/images/generations, /images/generations   OpenAI image generation
  POST /{ver}/models/{m}:embedContent       Gemini, one text
  POST /{ver}/models/{m}:batchEmbedContents Gemini, {"requests":[...]}
  Gemini chat paths are left to t/mock_gemini.py (this plugin returns False).

Vectors are exact in float32, so a base64 round trip compares equal:
  OpenAI  input i with text t: value j = ((len(t) + 3*j + i) % 16 - 8) / 16
          (token-id inputs count their ids as len)
  Gemini  the same divided by 32
  Length: "dimensions" (OpenAI) or "outputDimensionality" (Gemini), else 4.

Directives: the model string after '@' (OpenAI) and the first MOCK{k=v,...} in
the first input text (both protocols):
  status=CODE [times=N] [retry_after=S]   fail with CODE (OpenAI or google.rpc
                                          envelope); times limits it per MODELKEY
  float_only=1      OpenAI: answer floats even when base64 was asked
  no_usage=1        OpenAI: leave "usage" out
  malformed=1       200 with a body that is not JSON
  greedy=1          OpenAI embeddings: report the most tokens an honest tokenizer
                    could: one per UTF-8 byte of the texts, one per token id
  extra_images=K    images: K more images than asked for
  bow=1             OpenAI embeddings: each text's vector is a bag of its words
                    (lowercased runs of letters and digits, MOCK{...} left out),
                    each word adding +1 or -1 (by its SHA-256) to one of the
                    "dimensions" (default 1536 here) components: texts of the
                    same words in any order give cosine 1; of n words, k of
                    them shared, about k / n (the semantic cache's tests)
OpenAI embeddings answer base64 (little-endian float32) when encoding_format
is "base64", and usage prompt_tokens = ceil(characters / 4) (token ids count
one each). Images answer {"created":T,"data":[...]} with n items (default 1):
{"url":"https://images.mock/<i>.png","revised_prompt":P} or, for
response_format b64_json, {"b64_json":base64("mock-png-<i>")}.
Gemini requires x-goog-api-key (else 403 PERMISSION_DENIED) and, in a batch,
every request's "model" equal to "models/<m>" (else 400 INVALID_ARGUMENT);
models whose id starts with "missing" answer 404 NOT_FOUND.
"""
import base64
import hashlib
import json
import math
import re
import struct
import time

import __main__ as mock

GEMINI_RE = re.compile(r"^/[^/]+/models/([^/:]+):(embedContent|batchEmbedContents)$")
FAULT_KEYS = ("status", "malformed")
RPC_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
              429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def route(handler, method, path, raw):
    if method != "POST":
        return False
    if path in ("/v1/embeddings", "/embeddings"):
        openai(handler, path, raw, embeddings)
        return True
    if path in ("/v1/images/generations", "/images/generations"):
        openai(handler, path, raw, images)
        return True
    m = GEMINI_RE.match(path)
    if m:
        gemini(handler, path, raw, m.group(1), m.group(2))
        return True
    return False


def parse(raw):
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def first_text(texts):
    d = {}
    for t in texts[:1]:
        m = mock.MOCK_RE.search(t) if isinstance(t, str) else None
        if m:
            d.update(mock.parse_kv(m.group(1)))
    return d


def faults(d, nth):
    if "times" in d and nth > mock.num(d, "times"):
        for k in FAULT_KEYS:
            d.pop(k, None)
    return d


def vector(size, length, i, scale):
    return [((length + 3 * j + i) % 16 - 8) / scale for j in range(size)]


def bag_of_words(text, size):
    v = [0.0] * size
    for w in re.findall(r"[a-z0-9]+", mock.MOCK_RE.sub(" ", text).lower()):
        h = hashlib.sha256(w.encode()).digest()
        v[int.from_bytes(h[:4], "big") % size] += 1.0 if h[4] & 1 else -1.0
    if not any(v):
        v[0] = 1.0
    return v


def openai_inputs(inp):
    """(texts for directives, per-input lengths, prompt tokens)."""
    if isinstance(inp, str):
        return [inp], [len(inp)], max(1, math.ceil(len(inp) / 4))
    if isinstance(inp, list) and inp and all(isinstance(x, int) for x in inp):
        return [], [len(inp)], len(inp)
    if isinstance(inp, list) and inp and all(isinstance(x, list) for x in inp):
        return [], [len(x) for x in inp], sum(len(x) for x in inp)
    if isinstance(inp, list) and all(isinstance(x, str) for x in inp):
        n = sum(len(x) for x in inp)
        return inp, [len(x) for x in inp], max(1, math.ceil(n / 4))
    return None, None, None


def openai(handler, path, raw, answer):
    body = parse(raw)
    if body is None:
        entry, _ = handler.log_request_entry(path, None, raw.decode("utf-8", "replace"))
        handler.finish_entry(entry, None, "fault:bad_json", False)
        handler.send_body(400, mock.error_body(400, "We could not parse the JSON body of your request."))
        return
    model = body.get("model") if isinstance(body.get("model"), str) else "mock"
    entry, nth = handler.log_request_entry(path, model, body)
    texts = openai_inputs(body.get("input"))[0] or [body.get("prompt")]
    d = mock.parse_kv(model.split("@", 1)[1]) if "@" in model else {}
    d.update(first_text(texts))
    d = faults(d, nth)
    outcome = "ok"
    try:
        if "status" in d:
            code = int(mock.num(d, "status", 500))
            outcome = "fault:status=%d" % code
            extra = [("Retry-After", d["retry_after"])] if "retry_after" in d else []
            handler.send_body(code, mock.error_body(code, "mock fault %d" % code), extra=extra)
        elif mock.num(d, "malformed"):
            outcome = "fault:malformed=1"
            handler.send_body(200, '{"object": "list", "data": [')
        else:
            code, reply = answer(body, model, d)
            handler.send_body(code, mock.dumps(reply))
        handler.finish_entry(entry, model, outcome, False)
    except mock.Disconnected:
        handler.finish_entry(entry, model, "aborted", True)


def embeddings(body, model, d):
    _, lengths, tokens = openai_inputs(body.get("input"))
    if lengths is None:
        return 400, {"error": {"message": "'$.input' is invalid.", "type": "invalid_request_error",
                               "param": None, "code": None}}
    bow = mock.num(d, "bow")
    size = body.get("dimensions") if isinstance(body.get("dimensions"), int) else \
        1536 if bow else 4
    b64 = body.get("encoding_format") == "base64" and not mock.num(d, "float_only")
    texts = openai_inputs(body.get("input"))[0]
    data = []
    for i, n in enumerate(lengths):
        if bow and texts:
            v = bag_of_words(texts[i], size)
        else:
            v = vector(size, n, i, 16.0)
        if b64:
            v = base64.b64encode(struct.pack("<%df" % len(v), *v)).decode()
        data.append({"object": "embedding", "index": i, "embedding": v})
    reply = {"object": "list", "data": data, "model": model.split("@", 1)[0]}
    if mock.num(d, "greedy"):
        inp = body.get("input")
        items = inp if isinstance(inp, list) else [inp]
        tokens = sum(len(x.encode()) if isinstance(x, str) else
                     len(x) if isinstance(x, list) else 1 for x in items)
    if not mock.num(d, "no_usage"):
        reply["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return 200, reply


def images(body, model, d):
    n = body.get("n") if isinstance(body.get("n"), int) else 1
    n += int(mock.num(d, "extra_images"))
    items = []
    for i in range(n):
        if body.get("response_format") == "b64_json":
            items.append({"b64_json": base64.b64encode(b"mock-png-%d" % i).decode()})
        else:
            items.append({"url": "https://images.mock/%d.png" % i,
                          "revised_prompt": body.get("prompt")})
    return 200, {"created": int(time.time()), "data": items}


def rpc_error(handler, code, message, extra=()):
    handler.send_body(code, mock.dumps({"error": {
        "code": code, "message": message, "status": RPC_STATUS.get(code, "UNKNOWN")}}),
        extra=list(extra))


def gemini_texts(req):
    """The texts of one EmbedContentRequest, or None when malformed."""
    content = req.get("content") if isinstance(req, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        return None
    texts = [p.get("text") for p in parts if isinstance(p, dict)]
    return texts if texts and all(isinstance(t, str) for t in texts) else None


def gemini(handler, path, raw, model, method):
    body = parse(raw)
    entry, nth = handler.log_request_entry(path, model, body if body is not None
                                           else raw.decode("utf-8", "replace"))
    outcome = "ok"
    try:
        reqs = None
        if body is not None:
            reqs = [body] if method == "embedContent" else body.get("requests")
        if not (handler.headers.get("x-goog-api-key") or "").strip():
            outcome = "fault:invalid:x-goog-api-key"
            rpc_error(handler, 403, "Method doesn't allow unregistered callers (callers without "
                      "established identity). Please use API Key or other form of API consumer "
                      "identity to call this API.")
        elif not isinstance(reqs, list) or not reqs or \
                any(gemini_texts(r) is None for r in reqs):
            outcome = "fault:invalid:body"
            rpc_error(handler, 400, "Invalid JSON payload received.")
        elif method == "batchEmbedContents" and \
                any(r.get("model") != "models/" + model for r in reqs):
            outcome = "fault:invalid:model"
            rpc_error(handler, 400, "Model names in the batch must match models/%s." % model)
        elif model.startswith("missing"):
            outcome = "fault:status=404"
            rpc_error(handler, 404, "models/%s is not found for API version v1beta, or is not "
                      "supported for embedContent." % model)
        else:
            d = faults(first_text(gemini_texts(reqs[0])), nth)
            if "status" in d:
                code = int(mock.num(d, "status", 500))
                outcome = "fault:status=%d" % code
                extra = [("Retry-After", d["retry_after"])] if "retry_after" in d else []
                rpc_error(handler, code, "mock fault %d" % code, extra)
            elif mock.num(d, "malformed"):
                outcome = "fault:malformed=1"
                handler.send_body(200, '{"embeddings": [')
            else:
                embs = []
                for i, r in enumerate(reqs):
                    size = r.get("outputDimensionality")
                    size = size if isinstance(size, int) else 4
                    n = sum(len(t) for t in gemini_texts(r))
                    embs.append({"values": vector(size, n, i, 32.0)})
                reply = {"embedding": embs[0]} if method == "embedContent" else {"embeddings": embs}
                handler.send_body(200, json.dumps(reply, indent=2))
        handler.finish_entry(entry, model, outcome, False)
    except mock.Disconnected:
        handler.finish_entry(entry, model, "aborted", True)
