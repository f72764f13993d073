"""mock_gigachat.py: Sber GigaChat (REST v1) for t/mock-upstream.py.

POST /api/v2/oauth           the OAuth token endpoint
  Checks, in this order (errors shaped like the real ones, {"code":N,"message":M};
  outcome "fault:oauth:<what>"):
    Authorization "Basic <base64 of id:secret>" (a "Bearer" scheme is tolerated, as the
      English docs show it)                       else 401 {"code":4,"message":"Can't decode 'Authorization' header"}
    RqUID header shaped like a UUID               else 400 {"code":6,"message":"RqUID header is invalid"}
    form scope= empty or missing                  400 {"code":5,"message":"scope is empty"}
    scope not GIGACHAT_API_PERS/_B2B/_CORP        400 {"code":7,"message":"scope from db not fully
                                                       includes consumed scope"}
  200 {"access_token":"tok-<n>","expires_at":<now + 30 min, in ms>}
  Every token request is logged with model "oauth": stats "requests" {"oauth": n} counts them.

POST /api/v1/chat/completions   chat (the /api/v1 prefix keeps it apart from the OpenAI route)
  Authorization "Bearer <token>" must be a token this mock issued, not expired or revoked,
  else 401 {"status":401,"message":"Unauthorized"} (outcome "fault:unauthorized").
  The body must be GigaChat-shaped, else 422 {"status":422,"message":"Invalid params: ..."}
  (outcome "fault:invalid:<what>"): one system message and only first; roles system, user,
  assistant, function; string contents; function_call arguments objects; function messages
  named; no tools, tool_choice or stop.
  Directives as in the OpenAI route (model string after '@', MOCK{...} in the last user
  message), plus:
  expire_token=1   the presented token is revoked and the request answered 401, once per
                   text of the last user message (until /_mock/reset): the gateway must get
                   a new token and retry
  status=CODE      {"status":CODE,"message":M}; M "No such model" for 404, else
                   "mock fault CODE"; retry_after=S adds Retry-After
  chunks=N, delay=S, first_byte_delay=S, reset=1, times=N, echo=1, huge=BYTES, malformed=1,
  stall_after=K stall=S, reset_after=K, truncate_after=K   as in the OpenAI route
  cached=N         usage.precached_prompt_tokens N (default 0)
  finish=X         finish_reason X instead of stop (length, blacklist, ...)
  tool=1           a function_call get_weather {"city":"Paris","unit":"c"} (an object),
                   content "", functions_state_id, finish_reason "function_call"
  Responses have no id, model "GigaChat:1.0.26.20", object "chat.completion" (chunks too),
  usage {prompt_tokens, completion_tokens, total_tokens, precached_prompt_tokens}.
  Streams: "data: {json}\\n\\n" per chunk, role and text in the first delta, usage in the
  last chunk (the one with finish_reason), then "data: [DONE]". With tool=1 one chunk
  carries the whole function_call and the finish_reason.
"""
import base64
import binascii
import json
import re
import threading
import time
import urllib.parse
import uuid

import __main__ as mock

MODEL = "GigaChat:1.0.26.20"
SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")
FAULT_KEYS = mock.FAULT_KEYS + ("expire_token",)
TOOL = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}

# Issued tokens outlive /_mock/reset, as a real token outlives a test step.
LOCK = threading.Lock()
TOKENS = {}          # token -> expires_at (ms)
REVOKED = set()
ISSUED = [0]


def now_ms():
    return int(time.time() * 1000)


def giga_error(handler, code, message, extra=()):
    handler.send_body(code, mock.dumps({"status": code, "message": message}), extra=extra)


def oauth(handler, path, raw):
    form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    entry, _ = handler.log_request_entry(path, "oauth", {k: v for k, v in form.items()})
    auth = handler.headers.get("Authorization") or ""
    scheme, _, key = auth.partition(" ")
    try:
        decoded = base64.b64decode(key.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    scope = (form.get("scope") or [""])[0]
    if scheme not in ("Basic", "Bearer") or ":" not in decoded:
        bad = (401, 4, "Can't decode 'Authorization' header", "authorization")
    elif not UUID_RE.match(handler.headers.get("RqUID") or ""):
        bad = (400, 6, "RqUID header is invalid", "rquid")
    elif not scope:
        bad = (400, 5, "scope is empty", "scope")
    elif scope not in SCOPES:
        bad = (400, 7, "scope from db not fully includes consumed scope", "scope")
    else:
        bad = None
    if bad:
        handler.finish_entry(entry, "oauth", "fault:oauth:%s" % bad[3], False)
        handler.send_body(bad[0], mock.dumps({"code": bad[1], "message": bad[2]}))
        return
    with LOCK:
        ISSUED[0] += 1
        token = "tok-%d" % ISSUED[0]
        TOKENS[token] = now_ms() + 30 * 60 * 1000
        expires = TOKENS[token]
    handler.finish_entry(entry, "oauth", "ok", False)
    handler.send_body(200, mock.dumps({"access_token": token, "expires_at": expires}))


def token_ok(handler):
    auth = handler.headers.get("Authorization") or ""
    if not auth.startswith("Bearer "):
        return None
    token = auth[len("Bearer "):].strip()
    with LOCK:
        if token in REVOKED or TOKENS.get(token, 0) <= now_ms():
            return None
    return token


def invalid(body):
    """What makes body no GigaChat v1 request, or None."""
    if not isinstance(body, dict):
        return "bad_json", "body is not a JSON object"
    for k in ("tools", "tool_choice", "stop", "stream_options"):
        if k in body:
            return k, "unknown field %s" % k
    msgs = body.get("messages")
    if not isinstance(body.get("model"), str) or not isinstance(msgs, list) or not msgs:
        return "messages", "model and messages are required"
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("system", "user", "assistant", "function"):
            return "role", "messages[%d].role" % i
        if role == "system" and i > 0:
            return "system", "system message must be the first one"
        if not isinstance(m.get("content", ""), str):
            return "content", "messages[%d].content must be a string" % i
        fc = m.get("function_call")
        if fc is not None and not (isinstance(fc, dict) and isinstance(fc.get("name"), str)
                                   and isinstance(fc.get("arguments"), dict)):
            return "function_call", "messages[%d].function_call.arguments must be an object" % i
        if role == "function" and not isinstance(m.get("name"), str):
            return "function", "messages[%d].name is required" % i
    fns = body.get("functions")
    if fns is not None and not (isinstance(fns, list) and
                                all(isinstance(f, dict) and "name" in f for f in fns)):
        return "functions", "functions must be a list of {name, ...}"
    return None


def last_user_text(body):
    users = [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    return users[-1].get("content") if users else ""


def chat(handler, path, raw):
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        body = None
    model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) \
        else None
    entry, nth = handler.log_request_entry(path, model, body if isinstance(body, dict)
                                           else raw.decode("utf-8", "replace"))
    try:
        token = token_ok(handler)
        if token is None:
            handler.finish_entry(entry, model, "fault:unauthorized", False)
            giga_error(handler, 401, "Unauthorized")
            return
        bad = invalid(body)
        if bad:
            handler.finish_entry(entry, model, "fault:invalid:%s" % bad[0], False)
            giga_error(handler, 422, "Invalid params: %s" % bad[1])
            return
        d = mock.directives(body, model)
        if "times" in d and nth > mock.num(d, "times"):
            for k in FAULT_KEYS:
                d.pop(k, None)
        if mock.num(d, "expire_token"):
            key = str(last_user_text(body))
            with mock.LOCK:
                done = mock.STATE.setdefault("gigachat_expired", {})
                fresh = key not in done
                done[key] = True
            if fresh:
                with LOCK:
                    REVOKED.add(token)
                handler.finish_entry(entry, model, "fault:expire_token", False)
                giga_error(handler, 401, "Unauthorized")
                return
        stream = body.get("stream") is True
        outcome = "ok"
        for k in ("status", "reset", "malformed", "truncate_after", "reset_after",
                  "stall_after", "first_byte_delay"):
            if k in d and (stream or k in ("status", "reset", "malformed", "first_byte_delay")):
                outcome = "fault:%s=%s" % (k, d[k]) if k != "reset" else "fault:reset"
                break
        handler.pause(mock.num(d, "first_byte_delay"))
        if "reset" in d and mock.num(d, "reset"):
            handler.abort_connection()
        if handler.was_reset:
            pass
        elif "status" in d:
            code = int(mock.num(d, "status", 500))
            extra = [("Retry-After", d["retry_after"])] if "retry_after" in d else []
            giga_error(handler, code, "No such model" if code == 404 else
                       "mock fault %d" % code, extra)
        elif stream:
            outcome = chat_stream(handler, body, d, outcome)
        else:
            chat_plain(handler, body, d)
        handler.finish_entry(entry, None if handler.was_reset else model, outcome, False)
    except mock.Disconnected:
        handler.finish_entry(entry, model, "aborted", True)


def usage(body, d, completion):
    p = mock.prompt_tokens(body)
    return {"prompt_tokens": p, "completion_tokens": completion,
            "total_tokens": p + completion,
            "precached_prompt_tokens": int(mock.num(d, "cached"))}


def pieces(body, d):
    if "huge" in d:
        return ["x" * int(mock.num(d, "huge"))]
    if mock.num(d, "echo"):
        return [json.dumps(body, ensure_ascii=False)]
    return ["tok%d " % i for i in range(int(mock.num(d, "chunks", 3)))]


def chat_plain(handler, body, d):
    if "malformed" in d and mock.num(d, "malformed"):
        handler.send_body(200, '{"choices": [')
        return
    if mock.num(d, "tool"):
        msg = {"content": "", "role": "assistant", "function_call": TOOL,
               "functions_state_id": str(uuid.uuid4())}
        finish, n = "function_call", 5
    else:
        text = "".join(pieces(body, d))
        msg, finish, n = {"content": text, "role": "assistant"}, d.get("finish", "stop"), \
            len(pieces(body, d))
    resp = {"choices": [{"message": msg, "index": 0, "finish_reason": finish}],
            "created": int(time.time()), "model": MODEL, "object": "chat.completion",
            "usage": usage(body, d, n)}
    handler.send_body(200, json.dumps(resp, ensure_ascii=False),
                      "application/json; charset=utf-8")


def chat_stream(handler, body, d, outcome):
    created, delay = int(time.time()), mock.num(d, "delay")
    state = {"first": True}

    def event(payload):
        if not state["first"] and delay > 0:
            handler.pause(delay)
        state["first"] = False
        data = payload if isinstance(payload, str) else json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"))
        handler.send_chunk("data: %s\n\n" % data)

    def chunk(delta, finish=None, n=None):
        ch = {"delta": delta, "index": 0}
        if finish:
            ch["finish_reason"] = finish
        obj = {"choices": [ch], "created": created, "model": MODEL, "object": "chat.completion"}
        if n is not None:
            obj["usage"] = usage(body, d, n)
        return obj

    handler.start_response(200, "text/event-stream", [("Cache-Control", "no-cache")])
    if mock.num(d, "tool"):
        event(chunk({"content": "", "role": "assistant", "function_call": TOOL,
                     "functions_state_id": str(uuid.uuid4())}, "function_call", 5))
        event("[DONE]")
        handler.send_raw(b"0\r\n\r\n")
        return outcome
    parts = pieces(body, d)
    for i in range(len(parts) + 1):
        if "stall_after" in d and i == int(mock.num(d, "stall_after")):
            handler.pause(mock.num(d, "stall", 30))
        if "reset_after" in d and i == int(mock.num(d, "reset_after")):
            handler.abort_connection()
            return outcome
        if "truncate_after" in d and i == int(mock.num(d, "truncate_after")):
            handler.send_raw(b"0\r\n\r\n")
            return outcome
        if i == len(parts):
            break
        if i == 1 and "malformed" in d and mock.num(d, "malformed"):
            event('{"broken')
        event(chunk({"content": parts[i], "role": "assistant"} if i == 0 else
                    {"content": parts[i]}))
    event(chunk({"content": ""}, d.get("finish", "stop"), len(parts)))
    event("[DONE]")
    handler.send_raw(b"0\r\n\r\n")
    return outcome


def route(handler, method, path, raw):
    if method != "POST":
        return False
    if path == "/api/v2/oauth":
        oauth(handler, path, raw)
        return True
    if path == "/api/v1/chat/completions":
        chat(handler, path, raw)
        return True
    return False
