"""mock_completions.py: t/mock-upstream.py plugin for the legacy text completion.

Endpoints (logged in /_mock/stats like chat, MODELKEY = the model string)
  POST /v1/completions, /completions, /beta/completions   OpenAI text completion

Directives: the model string after '@', then the first MOCK{k=v,...} in the prompt
(a string, or the first string of an array); standing /_mock/faults apply too.
  status=CODE [times=N] [retry_after=S]   fail with CODE (OpenAI envelope); times
                       limits the fault directives to the first N requests per MODELKEY
  chunks=N             the text is "tok0 tok1 ... " (default 3 pieces)
  say=1                the text is the prompt without its MOCK{...}, then "|", then
                       the suffix (what the gateway forwarded), in pieces of piece=K
                       characters (default 3)
  usage=0              no usage (non-stream: no member; stream: no usage chunk)
  delay=S              stream: sleep S between events
  stall_after=K stall=S  stream: after K text chunks pause S (default 30) seconds
  reset_after=K        stream: abrupt TCP reset after K text chunks
  truncate_after=K     stream: clean chunked end after K text chunks (no [DONE])
  stream_error=K       stream: after K text chunks data: {"error":{...}} and the end
  malformed=1          non-stream: 200 with invalid JSON; stream: 2nd event `data: {"broken`
Answers: {"id":"cmpl-mock<N>","object":"text_completion","created":T,"model":M,
"choices":[{"text":..,"index":0,"logprobs":null,"finish_reason":"stop"}],
"usage":{"prompt_tokens":ceil(chars of prompt + suffix / 4) (at least 1),
"completion_tokens":pieces,"total_tokens":..}}. Streams send one chunk per piece
(finish_reason null), one with text "" and finish_reason "stop", with
stream_options.include_usage a chunk with "choices":[] and the usage, then [DONE].
"""
import json
import math
import time

import __main__ as mock

PATHS = ("/v1/completions", "/completions", "/beta/completions", "/v1/beta/completions")
FAULT_KEYS = ("status", "reset_after", "truncate_after", "stall_after", "stream_error",
              "malformed")


def route(handler, method, path, raw):
    if method != "POST" or path not in PATHS:
        return False
    try:
        complete(handler, path, raw)
    except mock.Disconnected:
        pass
    return True


def prompt_of(body):
    p = body.get("prompt")
    if isinstance(p, list) and p and isinstance(p[0], str):
        return p[0]
    return p if isinstance(p, str) else ""


def complete(handler, path, raw):
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        entry, _ = handler.log_request_entry(path, None, raw.decode("utf-8", "replace"))
        handler.finish_entry(entry, None, "fault:bad_json", False)
        handler.send_body(400, mock.error_body(400, "We could not parse the JSON body."))
        return
    model = body.get("model") if isinstance(body.get("model"), str) else "mock"
    entry, nth = handler.log_request_entry(path, model, body)
    with mock.LOCK:
        d = dict(mock.FAULTS.get(model.split("@", 1)[0], {}))
    d.update(mock.parse_kv(model.split("@", 1)[1]) if "@" in model else {})
    prompt = prompt_of(body)
    m = mock.MOCK_RE.search(prompt)
    if m:
        d.update(mock.parse_kv(m.group(1)))
    if "times" in d and nth > mock.num(d, "times"):
        for k in FAULT_KEYS:
            d.pop(k, None)
    suffix = body.get("suffix") if isinstance(body.get("suffix"), str) else ""
    if mock.num(d, "say"):
        text = mock.MOCK_RE.sub("", prompt).strip() + "|" + suffix
        k = max(1, int(mock.num(d, "piece", 3)))
        pieces = [text[i:i + k] for i in range(0, len(text), k)] or [""]
    else:
        pieces = ["tok%d " % i for i in range(int(mock.num(d, "chunks", 3)))]
    p_tok = max(1, math.ceil(len(prompt + suffix) / 4))
    usage = None
    if not ("usage" in d and not mock.num(d, "usage", 1)):
        usage = {"prompt_tokens": p_tok, "completion_tokens": len(pieces),
                 "total_tokens": p_tok + len(pieces)}
    with mock.LOCK:
        mock.ID_COUNTER[0] += 1
        cid = "cmpl-mock%d" % mock.ID_COUNTER[0]
    base, created = model.split("@", 1)[0], int(time.time())
    outcome = "ok"
    if "status" in d:
        code = int(mock.num(d, "status", 500))
        extra = [("Retry-After", d["retry_after"])] if "retry_after" in d else []
        handler.send_body(code, mock.error_body(code, "mock fault %d" % code), extra=extra)
        handler.finish_entry(entry, model, "fault:status=%s" % d["status"], False)
        return
    try:
        if body.get("stream") is True:
            outcome = stream(handler, body, d, cid, base, created, pieces, usage)
        else:
            if mock.num(d, "malformed"):
                handler.send_body(200, '{"id": "broken", "choices": [')
            else:
                resp = {"id": cid, "object": "text_completion", "created": created,
                        "model": base, "choices": [{"text": "".join(pieces), "index": 0,
                                                    "logprobs": None, "finish_reason": "stop"}]}
                if usage is not None:
                    resp["usage"] = usage
                    handler.reported_usage = usage
                handler.send_body(200, mock.dumps(resp))
        handler.finish_entry(entry, None if handler.was_reset else model, outcome, False)
    except mock.Disconnected:
        handler.finish_entry(entry, model, "aborted", True)


def stream(handler, body, d, cid, base, created, pieces, usage):
    opts = body.get("stream_options")
    want_usage = isinstance(opts, dict) and opts.get("include_usage") is True
    delay = mock.num(d, "delay")
    state = {"first": True}

    def chunk(text, finish=None):
        return {"id": cid, "object": "text_completion", "created": created, "model": base,
                "choices": [{"text": text, "index": 0, "logprobs": None,
                             "finish_reason": finish}]}

    def event(payload):
        if not state["first"] and delay > 0:
            handler.pause(delay)
        state["first"] = False
        handler.note_sent()
        handler.send_chunk("data: %s\n\n" % (payload if isinstance(payload, str)
                                             else mock.dumps(payload)))

    handler.start_response(200, "text/event-stream", [("Cache-Control", "no-cache")])
    n = len(pieces)
    for i in range(n + 1):
        if i == 1 and mock.num(d, "malformed"):
            event('{"broken')
        if "stall_after" in d and i == int(mock.num(d, "stall_after")):
            handler.pause(mock.num(d, "stall", 30))
        if "reset_after" in d and i == int(mock.num(d, "reset_after")):
            handler.abort_connection()
            return "fault:reset_after=%s" % d["reset_after"]
        if "truncate_after" in d and i == int(mock.num(d, "truncate_after")):
            handler.send_raw(b"0\r\n\r\n")
            return "fault:truncate_after=%s" % d["truncate_after"]
        if "stream_error" in d and i == int(mock.num(d, "stream_error")):
            event({"error": {"message": "mock stream error", "type": "server_error",
                             "param": None, "code": None}})
            handler.send_raw(b"0\r\n\r\n")
            handler.close_connection = True
            return "fault:stream_error=%s" % d["stream_error"]
        if i == n:
            break
        event(chunk(pieces[i]))
    event(chunk("", "stop"))
    if want_usage and usage is not None:
        handler.reported_usage = usage
        u = {"id": cid, "object": "text_completion", "created": created, "model": base,
             "choices": [], "usage": usage}
        event(u)
    event("[DONE]")
    handler.send_raw(b"0\r\n\r\n")
    return "ok"
