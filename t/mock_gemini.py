"""mock_gemini.py: Google Gemini (generativelanguage v1beta) mode of t/mock-upstream.py.

Endpoints (the /v1beta or /v1 prefix is optional)
  POST /v1beta/models/{MODEL}:generateContent
  POST /v1beta/models/{MODEL}:streamGenerateContent?alt=sse   SSE: "data: JSON\\r\\n\\r\\n" per
        chunk, no [DONE]; chunked body, then the connection is closed
  POST /v1beta/models/{MODEL}:streamGenerateContent            (no alt=sse) one JSON array
  MODEL is the URL path segment, percent-decoded; it is the MODELKEY of the counters and
  the "model" of the request log, whose entries also carry "query" (e.g. "alt=sse").

Validation, in this order (outcome "fault:invalid:<what>")
  no/empty x-goog-api-key header, or a key starting with "bad"
        400 INVALID_ARGUMENT "API key not valid. Please pass a valid API key." with a
        google.rpc.ErrorInfo detail, reason API_KEY_INVALID (as the real API)
  body not a JSON object, "contents" not a non-empty array, or an unknown top-level field
        400 INVALID_ARGUMENT (Gemini refuses unknown fields such as "model" or "stream")

Directives: the model segment after '@' (e.g. "gemini-mock@status=503"), then the first
MOCK{...} in the text parts of the LAST "user" turn of contents.
  status=CODE   google.rpc error body {"error":{"code","message","status"}}: 400
                INVALID_ARGUMENT, 403 PERMISSION_DENIED, 404 NOT_FOUND ("models/M is not
                found for API version v1beta..."), 429 RESOURCE_EXHAUSTED (+RetryInfo),
                500 INTERNAL, 503 UNAVAILABLE ("The model is overloaded..."), others UNKNOWN
  retry_after=S "Retry-After: S" on the error
  times=N       fault directives apply to the first N requests of the MODELKEY only
  chunks=N      text pieces "tok{i} " (default 3); candidatesTokenCount N
  tool=1        parts: text "Let me check." + functionCall get_weather {"city":"Paris","unit":"c"}
  tool=2        ... + functionCall get_time {"tz":"Europe/Paris"} (same part list)
                tool answers: candidatesTokenCount 10; finishReason STOP
  thought=1     a first part {"text":"think0 think1 ","thought":true}; thoughtsTokenCount 2
  finish=X      finishReason X instead of STOP
  cached=N      usageMetadata.cachedContentTokenCount N
  prompt_tokens=N  promptTokenCount N instead of P
  malformed=1   non-stream: 200 with invalid JSON; stream: 2nd event is `data: {"broken`
  first_byte_delay=S, reset=1   as in chat mode
usageMetadata: promptTokenCount P = ceil(chars of all text parts of systemInstruction and
contents / 4) (at least 1), candidatesTokenCount, thoughtsTokenCount when thought=1,
totalTokenCount = the sum.

Streams: one event per text piece (tool answers: the text, then one event with all the
functionCalls), the thought event first; every event carries the cumulative usageMetadata,
modelVersion and the same responseId; the last event carries finishReason. Fault points
count the content events sent, as in chat mode: delay=S between events, stall_after=K
stall=S, reset_after=K, truncate_after=K (clean chunked end, no finishReason),
stream_error=K (an event {"error":{"code":503,...,"status":"UNAVAILABLE"}}, then the end).
"""
import json
import math
import re
import urllib.parse

import __main__ as mock

PATH_RE = re.compile(r"^(?:/v1beta|/v1)?/models/([^/]+):(generateContent|streamGenerateContent)$")
FAULT_KEYS = mock.FAULT_KEYS + ("stream_error",)
KNOWN_FIELDS = {"contents", "systemInstruction", "system_instruction", "tools", "toolConfig",
                "tool_config", "generationConfig", "generation_config", "safetySettings",
                "safety_settings", "cachedContent", "cached_content", "labels"}
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
          504: "DEADLINE_EXCEEDED"}
TEXT = "Let me check."
TOOLS = [("get_weather", {"city": "Paris", "unit": "c"}),
         ("get_time", {"tz": "Europe/Paris"})]
TOOL_TOKENS = 10
THOUGHT = "think0 think1 "
RESPONSE_COUNTER = [0]


def dumps(obj):
    """Gemini's own spacing: a space after every colon, none after commas."""
    return json.dumps(obj, separators=(",", ": "))


def rpc_error(code, message, details=None):
    err = {"code": code, "message": message, "status": STATUS.get(code, "UNKNOWN")}
    if details:
        err["details"] = details
    return json.dumps({"error": err}, indent=2)


def bad_key_body():
    msg = "API key not valid. Please pass a valid API key."
    return rpc_error(400, msg, [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
         "domain": "googleapis.com",
         "metadata": {"service": "generativelanguage.googleapis.com"}},
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
         "message": msg}])


def fault_body(code, model):
    base = model.split("@", 1)[0]
    if code == 404:
        return rpc_error(404, "models/%s is not found for API version v1beta, or is not "
                         "supported for generateContent. Call ListModels to see the list of "
                         "available models and their supported methods." % base)
    if code == 429:
        return rpc_error(429, "You exceeded your current quota, please check your plan and "
                         "billing details.", [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                               "retryDelay": "41s"}])
    if code == 503:
        return rpc_error(503, "The model is overloaded. Please try again later.")
    if code == 500:
        return rpc_error(500, "An internal error has occurred. Please retry or report in "
                         "https://developers.generativeai.google/guide/troubleshooting")
    return rpc_error(code, "mock fault %d" % code)


def texts(parts):
    for p in parts if isinstance(parts, list) else []:
        if isinstance(p, dict) and isinstance(p.get("text"), str):
            yield p["text"]


def directives(body, model):
    d = mock.parse_kv(model.split("@", 1)[1]) if "@" in model else {}
    users = [c for c in body.get("contents") or [] if isinstance(c, dict) and c.get("role") == "user"]
    if users:
        for t in texts(users[-1].get("parts")):
            m = mock.MOCK_RE.search(t)
            if m:
                d.update(mock.parse_kv(m.group(1)))
                break
    return d


def prompt_tokens(body):
    si = body.get("systemInstruction") or body.get("system_instruction") or {}
    n = sum(len(t) for t in texts(si.get("parts") if isinstance(si, dict) else None))
    n += sum(len(t) for c in body.get("contents") or [] if isinstance(c, dict)
             for t in texts(c.get("parts")))
    return max(1, math.ceil(n / 4))


def validate(headers, body):
    """(what, body) of the 400 an invalid request gets, else None."""
    key = (headers.get("x-goog-api-key") or "").strip()
    if not key or key.startswith("bad"):
        return "x-goog-api-key", bad_key_body()
    if not isinstance(body, dict):
        return "json", rpc_error(400, "Invalid JSON payload received.")
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        return unknown[0], rpc_error(400, 'Invalid JSON payload received. Unknown name "%s": '
                                     "Cannot find field." % unknown[0])
    if not isinstance(body.get("contents"), list) or not body["contents"]:
        return "contents", rpc_error(400, "* GenerateContentRequest.contents: contents is not "
                                     "specified")
    return None


def events(d):
    """The answer as a list of (parts, is_content) pieces, one per stream event."""
    pieces = []
    if mock.num(d, "thought"):
        pieces.append(([{"text": THOUGHT, "thought": True}], True))
    ntools = min(2, max(0, int(mock.num(d, "tool"))))
    if ntools:
        pieces.append(([{"text": TEXT}], True))
        pieces.append(([{"functionCall": {"name": n, "args": a}} for n, a in TOOLS[:ntools]], True))
    else:
        for i in range(int(mock.num(d, "chunks", 3))):
            pieces.append(([{"text": "tok%d " % i}], True))
    return pieces


def usage(p, d, out, thoughts):
    p = int(mock.num(d, "prompt_tokens", p))
    u = {"promptTokenCount": p, "candidatesTokenCount": out,
         "totalTokenCount": p + out + thoughts,
         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": p}]}
    if thoughts:
        u["thoughtsTokenCount"] = thoughts
    if "cached" in d:
        u["cachedContentTokenCount"] = int(mock.num(d, "cached"))
    return u


def new_response_id():
    with mock.LOCK:
        RESPONSE_COUNTER[0] += 1
        return "MockGeminiResp%010d" % RESPONSE_COUNTER[0]


def answer_tokens(d):
    return TOOL_TOKENS if mock.num(d, "tool") else int(mock.num(d, "chunks", 3))


def plain(handler, body, model, d):
    if mock.num(d, "malformed"):
        handler.send_body(200, '{"candidates": [{"content": ')
        return
    parts = [p for piece, _ in events(d) for p in piece]
    thoughts = 2 if mock.num(d, "thought") else 0
    resp = {"candidates": [{"content": {"parts": parts, "role": "model"},
                            "finishReason": d.get("finish") or "STOP", "index": 0}],
            "usageMetadata": usage(prompt_tokens(body), d, answer_tokens(d), thoughts),
            "modelVersion": model.split("@", 1)[0], "responseId": new_response_id()}
    handler.send_body(200, json.dumps(resp, indent=2))


def stream(handler, body, model, d, sse):
    rid, version = new_response_id(), model.split("@", 1)[0]
    delay, p = mock.num(d, "delay"), prompt_tokens(body)
    pieces = events(d)
    thoughts = 2 if mock.num(d, "thought") else 0
    total = answer_tokens(d)
    state = {"first": True, "array": []}

    def chunk(parts, out, th, finish=None):
        cand = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = finish
        return {"candidates": [cand], "usageMetadata": usage(p, d, out, th),
                "modelVersion": version, "responseId": rid}

    def event(payload):
        data = payload if isinstance(payload, str) else dumps(payload)
        if not sse:
            state["array"].append(data)
            return
        if not state["first"] and delay > 0:
            handler.pause(delay)
        state["first"] = False
        handler.send_chunk("data: %s\r\n\r\n" % data)

    def end():
        if not sse:
            handler.send_body(200, "[" + ",\r\n".join(state["array"]) + "]")
            return
        handler.send_raw(b"0\r\n\r\n")
        handler.close_connection = True     # the real API ends streams by closing

    def fault_point(i):
        """True when the stream was ended here (exactly i content events sent)."""
        if "stall_after" in d and i == int(mock.num(d, "stall_after")):
            handler.pause(mock.num(d, "stall", 30))
        if "reset_after" in d and i == int(mock.num(d, "reset_after")):
            handler.abort_connection()
            return True
        if "truncate_after" in d and i == int(mock.num(d, "truncate_after")):
            end()
            return True
        if "stream_error" in d and i == int(mock.num(d, "stream_error")):
            event(json.loads(rpc_error(503, "The model is overloaded. Please try again later.")))
            end()
            return True
        return False

    if sse:
        handler.start_response(200, "text/event-stream", [("Cache-Control", "no-cache")])
    out = th = 0
    for i, (parts, _) in enumerate(pieces):
        if fault_point(i):
            return
        if parts[0].get("thought"):
            th = thoughts
        elif "functionCall" in parts[0]:
            out = total
        else:
            out = min(total, out + (1 if not mock.num(d, "tool") else 2))
        last = i == len(pieces) - 1
        if last:
            out = total
        event(chunk(parts, out, th, (d.get("finish") or "STOP") if last else None))
        if i == 0 and mock.num(d, "malformed"):
            event('{"broken')
    end()


def route(handler, method, path, raw):
    m = PATH_RE.match(path)
    if method != "POST" or not m:
        return False
    model = urllib.parse.unquote(m.group(1))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
    streaming = m.group(2) == "streamGenerateContent"
    sse = streaming and query.get("alt") == ["sse"]
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        body = None
    entry, nth = handler.log_request_entry(path, model, body if isinstance(body, dict)
                                           else raw.decode("utf-8", "replace"))
    with mock.LOCK:
        entry["query"] = urllib.parse.urlsplit(handler.path).query
    try:
        bad = validate(handler.headers, body)
        if bad:
            handler.finish_entry(entry, model, "fault:invalid:%s" % bad[0], False)
            handler.send_body(400, bad[1])
            return True
        d = directives(body, model)
        if "times" in d and nth > mock.num(d, "times"):
            for k in FAULT_KEYS:
                d.pop(k, None)
        outcome = "ok"
        for k in ("status", "reset", "malformed", "truncate_after", "reset_after",
                  "stall_after", "first_byte_delay", "stream_error"):
            if k in d and (streaming or k in ("status", "reset", "malformed", "first_byte_delay")):
                outcome = "fault:%s=%s" % (k, d[k]) if k != "reset" else "fault:reset"
                break
        handler.pause(mock.num(d, "first_byte_delay"))
        if "reset" in d and mock.num(d, "reset"):
            handler.abort_connection()
        elif "status" in d:
            code = int(mock.num(d, "status", 500))
            extra = [("Retry-After", d["retry_after"])] if "retry_after" in d else []
            handler.send_body(code, fault_body(code, model), extra=extra)
        elif streaming:
            stream(handler, body, model, d, sse)
        else:
            plain(handler, body, model, d)
        handler.finish_entry(entry, None if handler.was_reset else model, outcome, False)
    except mock.Disconnected:
        handler.finish_entry(entry, model, "aborted", True)
    return True
