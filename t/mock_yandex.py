"""mock_yandex.py: YandexGPT's native completion API for t/mock-upstream.py.

POST /foundationModels/v1/completion
  Same logging, MODELKEY counters (MODELKEY = the modelUri), `times`, outcome and abort
  accounting as the chat route. Directives come from the modelUri after '@' (e.g.
  "gpt://b1gfolder/yandexgpt-lite/latest@status=503") and from the first MOCK{...} in
  the `text` of the LAST role=user message.
  Errors use Yandex's gateway shape {"error":{"grpcCode":G,"httpCode":H,"message":M,
  "httpStatus":S,"details":[]}}, or with error_shape=flat grpc-gateway's own
  {"code":G,"message":M,"details":[]}.
  Validation, in this order (outcome "fault:invalid:<what>"):
    Authorization not "Api-Key K" or "Bearer T"   401 grpcCode 16 "Unknown api key"
    body not a JSON object                        400 grpcCode 3  (outcome "fault:bad_json")
    modelUri not "gpt://FOLDER/MODEL" or "ds://ID" 400 grpcCode 3
    x-folder-id missing or not FOLDER (gpt://)     400 grpcCode 3
    completionOptions.maxTokens not a string of digits (when present)   400 grpcCode 3
    messages not a non-empty list of {role: system|user|assistant, exactly one of
      text (string), toolCallList, toolResultList}                      400 grpcCode 3
  status=CODE          CODE with the error body "mock fault CODE" (grpcCode: 400 3,
                       401 16, 403 7, 404 5, 429 8, 500 13, 503 14, 504 4, others 2);
                       retry_after=S adds "Retry-After: S"
  non-stream           {"result":{"alternatives":[{"message":{"role":"assistant",
                        "text":"tok0 tok1 tok2 "},"status":"ALTERNATIVE_STATUS_FINAL"}],
                        "usage":{"inputTextTokens":"P","completionTokens":"N",
                        "totalTokens":"P+N"},"modelVersion":"23.10.2024"}}
                       counts are strings; P = ceil(chars of every text and tool result
                       / 4), at least 1; N = chunks (tool=1: 5)
  chunks=N             pieces "tok{i} " (default 3); cyrillic=1 makes them "ток{i} "
  tool=1               message {"role":"assistant","toolCallList":{"toolCalls":[
                        {"functionCall":{"name":"get_weather","arguments":{"city":"Paris"}}}]}},
                       status ALTERNATIVE_STATUS_TOOL_CALLS
  status_final=X       the final status (FINAL by default); X with or without the
                       ALTERNATIVE_STATUS_ prefix, e.g. TRUNCATED_FINAL, CONTENT_FILTER
  bare=1               non-stream: the response without the "result" wrapper
  malformed=1          non-stream: 200 with invalid JSON; stream: 2nd line {"broken
  first_byte_delay=S   sleep S seconds before the status line
  completionOptions.stream true: Content-Type application/json, chunked, one JSON object
                       per line ("\n"-terminated), no [DONE]; each line has the WHOLE
                       text so far: lines 1..N-1 status PARTIAL with the first i pieces,
                       line N the final status and all pieces; usage on every line
                       (completionTokens = pieces so far). tool=1: a PARTIAL line and the
                       final line both carry the toolCallList.
  framing=sse          stream lines as "data: JSON\n\n" (the other reading of the framing)
  delay=S              stream: sleep S between lines
  truncate_after=K     stream: clean chunked end after K lines (no final status)
  stream_error=K       stream: after K lines an {"error":{...}} line (grpcCode 8, httpCode
                       429), then the end
"""
import json
import math

import __main__ as mock

PATH = "/foundationModels/v1/completion"
MODEL_VERSION = "23.10.2024"
FAULT_KEYS = ("status", "malformed", "first_byte_delay", "truncate_after", "stream_error")
GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 429: 8, 500: 13, 503: 14, 504: 4}
TOOL_CALLS = {"toolCalls": [{"functionCall": {"name": "get_weather",
                                              "arguments": {"city": "Paris"}}}]}
STATUS_PREFIX = "ALTERNATIVE_STATUS_"


def error_body(code, message, d):
    grpc = GRPC.get(code, 2)
    if d.get("error_shape") == "flat":
        return mock.dumps({"code": grpc, "message": message, "details": []})
    try:
        phrase = mock.http.HTTPStatus(code).phrase
    except ValueError:
        phrase = "Unknown"
    return mock.dumps({"error": {"grpcCode": grpc, "httpCode": code, "message": message,
                                 "httpStatus": phrase, "details": []}})


def message_texts(m):
    if isinstance(m.get("text"), str):
        yield m["text"]
    results = (m.get("toolResultList") or {}).get("toolResults") or []
    for r in results:
        fr = r.get("functionResult") if isinstance(r, dict) else None
        if isinstance(fr, dict) and isinstance(fr.get("content"), str):
            yield fr["content"]


def input_tokens(body):
    n = sum(len(t) for m in body["messages"] for t in message_texts(m))
    return max(1, math.ceil(n / 4))


def directives(body, uri):
    d = mock.parse_kv(uri.split("@", 1)[1]) if "@" in uri else {}
    users = [m for m in body["messages"] if m.get("role") == "user"]
    if users and isinstance(users[-1].get("text"), str):
        found = mock.MOCK_RE.search(users[-1]["text"])
        if found:
            d.update(mock.parse_kv(found.group(1)))
    return d


def invalid(headers, body):
    """(status, message, what) for an invalid request, else None."""
    auth = (headers.get("Authorization") or "").split(" ", 1)
    if len(auth) != 2 or auth[0] not in ("Api-Key", "Bearer") or not auth[1].strip():
        return 401, "Unknown api key", "authorization"
    if not isinstance(body, dict):
        return 400, "Invalid JSON payload", None
    uri = body.get("modelUri")
    if not isinstance(uri, str) or not (uri.startswith("gpt://") or uri.startswith("ds://")):
        return 400, "modelUri: invalid model uri", "modelUri"
    if uri.startswith("gpt://"):
        folder = uri[len("gpt://"):].split("/", 1)[0]
        if headers.get("x-folder-id") != folder:
            return (400, "x-folder-id %r does not match the folder of modelUri %r"
                    % (headers.get("x-folder-id"), folder), "x-folder-id")
    opts = body.get("completionOptions", {})
    if not isinstance(opts, dict):
        return 400, "completionOptions: invalid value", "completionOptions"
    if "maxTokens" in opts and not (isinstance(opts["maxTokens"], str)
                                    and opts["maxTokens"].isdigit()):
        return 400, "completionOptions.maxTokens: must be an int64 string", "maxTokens"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return 400, "messages: at least one message is required", "messages"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            return 400, "messages[%d].role: invalid role" % i, "role"
        kinds = [k for k in ("text", "toolCallList", "toolResultList") if k in m]
        if len(kinds) != 1 or ("text" in m and not isinstance(m["text"], str)):
            return 400, "messages[%d]: exactly one of text, toolCallList, toolResultList" % i, \
                "content"
    return None


def answer(body, d):
    """(list of cumulative messages, final status, completion tokens)."""
    final = d.get("status_final", "FINAL")
    if not final.startswith(STATUS_PREFIX):
        final = STATUS_PREFIX + final
    if mock.num(d, "tool"):
        msg = {"role": "assistant", "toolCallList": TOOL_CALLS}
        return [msg, msg], STATUS_PREFIX + "TOOL_CALLS", 5
    n = max(1, int(mock.num(d, "chunks", 3)))
    word = "ток" if mock.num(d, "cyrillic") else "tok"
    pieces = ["%s%d " % (word, i) for i in range(n)]
    return ([{"role": "assistant", "text": "".join(pieces[:i + 1])} for i in range(n)],
            final, n)


def result(msg, status, body, completion):
    p = input_tokens(body)
    return {"alternatives": [{"message": msg, "status": status}],
            "usage": {"inputTextTokens": str(p), "completionTokens": str(completion),
                      "totalTokens": str(p + completion)},
            "modelVersion": MODEL_VERSION}


def plain(handler, body, d):
    if "malformed" in d and mock.num(d, "malformed"):
        handler.send_body(200, '{"result": {"alternatives": [')
        return
    msgs, final, n = answer(body, d)
    res = result(msgs[-1], final, body, n)
    handler.send_body(200, mock.dumps(res if mock.num(d, "bare") else {"result": res}))


def stream(handler, body, d, outcome):
    msgs, final, n = answer(body, d)
    delay, sse = mock.num(d, "delay"), d.get("framing") == "sse"
    state = {"first": True}

    def line(text):
        if not state["first"] and delay > 0:
            handler.pause(delay)
        state["first"] = False
        handler.send_chunk(("data: %s\n\n" if sse else "%s\n") % text)

    handler.start_response(200, "text/event-stream" if sse else "application/json")
    for i, msg in enumerate(msgs):
        # fault points: checked when exactly i lines have been sent
        if "truncate_after" in d and i == int(mock.num(d, "truncate_after")):
            handler.send_raw(b"0\r\n\r\n")
            return outcome
        if "stream_error" in d and i == int(mock.num(d, "stream_error")):
            line(mock.dumps({"error": {"grpcCode": 8, "httpCode": 429,
                                       "message": "mock stream quota exceeded",
                                       "httpStatus": "Too Many Requests", "details": []}}))
            handler.send_raw(b"0\r\n\r\n")
            return outcome
        if i == 1 and "malformed" in d and mock.num(d, "malformed"):
            line('{"broken')
        last = i == len(msgs) - 1
        done = n if last or "toolCallList" in msg else i + 1
        line(mock.dumps({"result": result(msg, final if last else
                                          STATUS_PREFIX + "PARTIAL", body, done)}))
    handler.send_raw(b"0\r\n\r\n")
    return outcome


def completion(handler, path, raw):
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        body = None
    uri = None
    if isinstance(body, dict) and isinstance(body.get("modelUri"), str):
        uri = body["modelUri"]
    entry, nth = handler.log_request_entry(path, uri, body if isinstance(body, dict)
                                           else raw.decode("utf-8", "replace"))
    try:
        bad = invalid(handler.headers, body)
        if bad:
            code, message, what = bad
            handler.finish_entry(entry, uri, "fault:invalid:%s" % what if what
                                 else "fault:bad_json", False)
            handler.send_body(code, error_body(code, message, {}))
            return
    except mock.Disconnected:
        handler.finish_entry(entry, uri, "aborted", True)
        return
    d = directives(body, uri)
    if "times" in d and nth > mock.num(d, "times"):
        for k in FAULT_KEYS:
            d.pop(k, None)
    is_stream = body.get("completionOptions", {}).get("stream") is True
    outcome = "ok"
    for k in ("status", "malformed", "truncate_after", "stream_error", "first_byte_delay"):
        if k in d and (is_stream or k in ("status", "malformed", "first_byte_delay")):
            outcome = "fault:%s=%s" % (k, d[k])
            break
    try:
        handler.pause(mock.num(d, "first_byte_delay"))
        if "status" in d:
            code = int(mock.num(d, "status", 500))
            extra = [("Retry-After", d["retry_after"])] if "retry_after" in d else []
            handler.send_body(code, error_body(code, "mock fault %d" % code, d), extra=extra)
        elif is_stream:
            outcome = stream(handler, body, d, outcome)
        else:
            plain(handler, body, d)
        handler.finish_entry(entry, uri, outcome, False)
    except mock.Disconnected:
        handler.finish_entry(entry, uri, "aborted", True)


def route(handler, method, path, raw):
    if method != "POST" or path != PATH:
        return False
    completion(handler, path, raw)
    return True
