#!/usr/bin/python3
"""mock-upstream.py - mock OpenAI-compatible (and Anthropic Messages) LLM provider for
llmgate integration tests.

Usage: python3 t/mock-upstream.py --port N [--port-file PATH] [--host 127.0.0.1] [--verbose]
  --port 0 picks a free port; the real port is written atomically to --port-file and
  "mock-upstream listening on HOST:PORT" is printed to stderr.

Endpoints
  POST /v1/chat/completions, POST /chat/completions   chat (non-stream and "stream": true)
  POST /v1/messages, POST /messages                   Anthropic Messages API (see below)
  GET  /v1/models, GET /models                        OpenAI model list
  POST /v1/completions, /completions                 legacy text completion (plugin
                                                      t/mock_completions.py, see there)
  GET  /_mock/stats    {"requests":{MODELKEY:n}, "aborted":{..}, "completed":{..}, "total":N,
                        "log":[{t,path,model,headers,body,aborted,outcome}] (last 500)}
  POST /_mock/reset    clears counters and log -> {"ok":true}
  POST /_mock/keys     {"revoked":[KEY,..], "quota":[KEY,..]}: a chat or messages request whose
                       credential (Authorization: Bearer KEY or x-api-key: KEY) is revoked gets
                       401 invalid_api_key, one whose quota is gone 429 insufficient_quota (each
                       message quotes the key, as OpenAI's does); the outcome in the log is
                       "fault:key_revoked" / "fault:key_quota". {} clears; /_mock/reset leaves it.
  POST /_mock/faults   {"MODEL":"key=value,...", ...}: standing directives for requests whose
                       model (before '@') is MODEL, under the request's own; {} clears them
                       (an upstream that breaks and recovers while the gateway runs);
                       GET /_mock/faults shows them. /_mock/reset leaves them.
  anything else        404, OpenAI error envelope

Directives (merged; message directives override model directives)
  1. model string: everything after the first '@', comma-separated key=value
       e.g. "mock@status=503,times=1"        (MODELKEY = the full model string)
  2. the first MOCK{key=value,...} in the text of the LAST role=user message
  status=CODE          reply CODE with {"error":{"message":"mock fault CODE","type":...}}
  times=N              fault directives apply only to the first N requests per MODELKEY
                       (fault directives: status reset malformed first_byte_delay
                        stall_after reset_after truncate_after stream_error)
  retry_after=S        add "Retry-After: S" to the error response
  error_code=C         the error's "code" (status=CODE; e.g. context_length_exceeded)
  error_message=M      the error's message instead of "mock fault CODE" (no commas)
  leak=1               the error message (status=CODE, stream_error=K) quotes the credentials
                       the mock received, as careless providers do: "Incorrect API key
                       provided: <key>. You sent Authorization: <value>; x-api-key: <value>"
  stream_error=K       stream: after K content chunks an error event
                       data: {"error":{"message":...,"type":"server_error"}} and the body ends
  first_byte_delay=S   sleep S seconds before the status line
  chunks=N             number of content pieces "tok{i} " (default 3)
  delay=S              stream: sleep S between events
  stall_after=K stall=S  stream: after K content chunks pause S (default 30) seconds
  reset=1              abrupt TCP reset (SO_LINGER 0) without any response
  reset_after=K        stream: abrupt TCP reset after K content chunks
  malformed=1          non-stream: 200 with invalid JSON; stream: 2nd event is `data: {"broken`
  truncate_after=K     stream: clean chunked end after K content chunks (no finish, no [DONE])
  huge=BYTES           non-stream: content is BYTES 'x' characters
  reasoning=1          DeepSeek-style reasoning_content ("think0 think1 ")
  comments=1           stream: ": OPENROUTER PROCESSING" comment before every event
  tool=1               answer with a get_weather tool call (finish_reason tool_calls)
  echo=1               non-stream: content = JSON dump of the received request body
  say=1                content = the text of the last user message with its MOCK{...}
                       removed (what the gateway forwarded: placeholders, redactions),
                       streamed in pieces of piece=K characters (default 3); with tool=1
                       the tool call's arguments are {"note": that text}, in such pieces
  usage=0              report no usage: non-stream answers carry no "usage" member, streams
                       send no usage chunk even when stream_options.include_usage asks
  prompt_tokens=N      report N prompt tokens instead of the computed count
  completion_tokens=N  report N completion tokens instead of the number of pieces
  greedy=1             the model uses every token it is allowed: completion_tokens reported
                       = the LARGEST of the limit fields it was sent (max_tokens,
                       max_completion_tokens; 100000 when none) times n (chat only)
  cost=USD             report OpenRouter's "cost" (a number, USD) in usage
  cached=N             report usage.prompt_tokens_details {"cached_tokens": N} (prompt caching)
  cache_hit=N          report DeepSeek's prompt_cache_hit_tokens N and prompt_cache_miss_tokens
                       (prompt tokens - N) in usage, without prompt_tokens_details
Every chat log entry also has "usage": the usage object the mock reported (null: none),
"done": false while the mock is still answering it, and "t_end" once it is done; "sent" lists
the times (time.time(), like "t" and "t_end") at which the mock began to write each stream
event (nobody can have received an event before its time).
Outcome in the log: "ok", "fault:<directive>" (e.g. fault:status=503, fault:reset) or "aborted"
(client disconnect). "completed" counts responses fully written (error replies included);
reset/reset_after requests count in neither "completed" nor "aborted".

Anthropic Messages mode (POST /v1/messages, /messages)
  Same logging, MODELKEY counters, `times`, outcome and abort accounting as the chat route;
  directives come from the model string after '@' and from the first MOCK{...} in the LAST
  role=user message (content string, or its {"type":"text"} blocks).
  Errors use {"type":"error","error":{"type":T,"message":M},"request_id":"req_mock<N>"};
  every reply carries a "request-id: req_mock<N>" header.
  Validation, in this order (outcome "fault:invalid:<what>"):
    no/empty x-api-key header      401 authentication_error "invalid x-api-key"
    no anthropic-version header    400 invalid_request_error "anthropic-version: header is required"
    body not a JSON object         400 invalid_request_error (outcome "fault:bad_json")
    model not a string / messages not an array / max_tokens not an integer
                                   400 invalid_request_error "<field>: Field required" (missing)
                                   or "<field>: Input should be a valid <type>"
  status=CODE          CODE with the Anthropic envelope: 400 invalid_request_error,
                       401 authentication_error, 403 permission_error, 404 not_found_error,
                       413 request_too_large, 429 rate_limit_error, 500 api_error,
                       529 overloaded_error ("Overloaded"), others api_error; message
                       "mock fault CODE"; 429/529 add "x-should-retry: true";
                       retry_after=S adds "Retry-After: S"
  non-stream           {"model":<model before '@'>,"id":"msg_mock<N>","type":"message",
                        "role":"assistant","content":[...],"stop_reason":R,"stop_sequence":null,
                        "usage":{"input_tokens":P,"cache_creation_input_tokens":0,
                                 "cache_read_input_tokens":C,"output_tokens":O}}
                       text: one text block "tok0 tok1 ... " (chunks=N pieces), R end_turn, O=N
                       P = ceil(chars of all text in system + messages / 4), at least 1
                       (string contents, text blocks, text inside tool_result blocks)
  cached=N             usage.cache_read_input_tokens N (default 0)
  cache_write=N        usage.cache_creation_input_tokens N (default 0)
  input_tokens=N       usage.input_tokens N instead of P (Anthropic's input_tokens leaves out
                       the cache reads and writes)
  stop_reason=X        override stop_reason (max_tokens, refusal, stop_sequence, ...); with
                       stop_sequence, stop_sequence = request's stop_sequences[0] if any
  tool=1               content: text "Let me check." + tool_use {"id":"toolu_mock1",
                       "name":"get_weather","input":{"city":"Paris","unit":"c"}}; R tool_use
  tool=2               ... + a second tool_use {"id":"toolu_mock2","name":"get_time",
                       "input":{"tz":"Europe/Paris"}}
                       O = number of stream deltas (tool=1: 6, tool=2: 10)
  huge=BYTES, echo=1, malformed=1 (200 with invalid JSON) as in chat mode
  "stream": true       Content-Type "text/event-stream; charset=utf-8", chunked, frames
                       "event: NAME\ndata: JSON\n\n", no [DONE]; delay=S between events:
                       message_start (content [], stop_reason null, usage input_tokens P,
                         cache_creation_input_tokens W, cache_read_input_tokens C,
                         output_tokens 1)
                       content_block_start index 0 {"type":"text","text":""}
                       ping (data {"type": "ping"}, once, after the first block start)
                       content_block_delta text_delta per piece ("tok{i} ")
                       content_block_stop index 0
                       with tool=1|2 the text block has the deltas "Let me", " check.", then
                       per tool block index 1, 2: content_block_start {"type":"tool_use",
                         "id","name","input":{}}, input_json_delta deltas: "" first, then 3
                         fragments (tool 1: '{"city": "Par', 'is", "unit', '": "c"}';
                         tool 2: '{"tz": "Eur', 'ope/Pa', 'ris"}'), content_block_stop
                       message_delta {"delta":{"stop_reason":R,"stop_sequence":null},
                         "usage":{"output_tokens":O}} (O = all deltas sent, cumulative)
                       message_stop, padded: data: {"type":"message_stop"              }
  Stream fault points count content_block_delta events (text and input_json alike), checked
  before each delta and once more before message_delta:
  stall_after=K stall=S, reset_after=K, truncate_after=K   as in chat mode
  stream_error=K       after K deltas: event: error, data {"type": "error", "error":
                       {"type": "overloaded_error", "message": "Overloaded"}}, then the
                       chunked body ends (no message_stop) and the connection is closed
  malformed=1          stream: 2nd event is "event: content_block_delta" / data: {"broken
  first_byte_delay, reset=1, times=N   as in chat mode (stream_error is a fault directive)

Anthropic token counting (POST /v1/messages/count_tokens, /messages/count_tokens)
  Logged like the other routes (path, model, headers, body); no directives. No x-api-key:
  401 authentication_error; model not a string or messages not an array: 400
  invalid_request_error. Else 200 {"input_tokens": P}, P counted as in Messages mode.
"""
import argparse, collections, http, json, math, os, re, select, signal, socket
import struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {}
ID_COUNTER = [0]
VERBOSE = False
FAULT_KEYS = ("status", "reset", "malformed", "first_byte_delay", "stall_after",
              "reset_after", "truncate_after", "stream_error")
TOOL_ARGS = ['{"city"', ':"Paris', '"}']          # 3 argument fragments
MOCK_RE = re.compile(r"MOCK\{([^}]*)\}")


def reset_state():
    with LOCK:
        STATE.clear()
        STATE.update(requests={}, aborted={}, completed={}, total=0,
                     log=collections.deque(maxlen=500))


def parse_kv(text):
    out = {}
    for item in text.split(","):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def text_parts(content):
    """Yield the strings of a message content (string or array of parts)."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                yield p["text"]


FAULTS = {}     # model (before '@') -> standing directives, set by POST /_mock/faults
KEYS = {"revoked": set(), "quota": set()}   # set by POST /_mock/keys


def credential(headers):
    auth = headers.get("Authorization") or ""
    if auth.startswith("Bearer "):
        return auth[7:]
    return headers.get("x-api-key") or headers.get("x-goog-api-key") or ""


def key_refusal(headers):
    """(status, code, message) for a revoked or exhausted key, else None."""
    key = credential(headers)
    with LOCK:
        revoked, quota = key in KEYS["revoked"], key in KEYS["quota"]
    if revoked:
        return 401, "invalid_api_key", "Incorrect API key provided: %s." % key
    if quota:
        return 429, "insufficient_quota", ("You exceeded your current quota, please check "
                                           "your plan and billing details. Key: %s" % key)
    return None


def directives(body, model, parts=text_parts):
    with LOCK:
        d = dict(FAULTS.get(model.split("@", 1)[0], {}))
    d.update(parse_kv(model.split("@", 1)[1]) if "@" in model else {})
    msgs = body.get("messages") if isinstance(body.get("messages"), list) else []
    users = [m for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
    if users:
        for t in parts(users[-1].get("content")):
            m = MOCK_RE.search(t)
            if m:
                d.update(parse_kv(m.group(1)))
                break
    return d


def said(body, d, parts=text_parts):
    """say=1: the last user message's text without its directive, in pieces."""
    msgs = body.get("messages") if isinstance(body.get("messages"), list) else []
    users = [m for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
    text = "".join(parts(users[-1].get("content"))) if users else ""
    text = MOCK_RE.sub("", text).strip()
    if num(d, "tool"):
        text = json.dumps({"note": text}, ensure_ascii=False)
    k = max(1, int(num(d, "piece", 3)))
    return [text[i:i + k] for i in range(0, len(text), k)] or [""]


def num(d, key, default=0.0):
    try:
        return float(d.get(key, default))
    except ValueError:
        return default


def prompt_tokens(body):
    msgs = body.get("messages") if isinstance(body.get("messages"), list) else []
    n = sum(len(t) for m in msgs if isinstance(m, dict) for t in text_parts(m.get("content")))
    return max(1, math.ceil(n / 4))


def greedy_tokens(body):
    """What a model that ignores nothing it may use generates: the largest limit
    it was sent (an upstream that honours the laxest field), times the choices."""
    limits = [v for v in (body.get("max_tokens"), body.get("max_completion_tokens"))
              if isinstance(v, int) and not isinstance(v, bool)]
    n = body.get("n")
    n = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    return (max(limits) if limits else 100000) * n


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


def leaked(headers, message):
    """message, then the credentials of the request quoted back (leak=1)."""
    auth = headers.get("Authorization") or ""
    key = headers.get("x-api-key") or ""
    secret = auth.split(" ", 1)[1] if " " in auth else (key or auth)
    return "%s: Incorrect API key provided: %s. You sent Authorization: %s; x-api-key: %s" % (
        message, secret, auth, key)


def error_body(code, message, etype=None):
    etype = etype or ("invalid_request_error" if 400 <= code < 500 else "server_error")
    return dumps({"error": {"message": message, "type": etype, "param": None, "code": None}})


# ---------------------------------------------------------------- Anthropic helpers
ANTH_FAULT_KEYS = FAULT_KEYS
ANTH_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
ANTH_TEXT = ["Let me", " check."]                   # text deltas before tool_use blocks
# (id, name, input, partial_json fragments after the initial "")
ANTH_TOOLS = [("toolu_mock1", "get_weather", {"city": "Paris", "unit": "c"},
               ['{"city": "Par', 'is", "unit', '": "c"}']),
              ("toolu_mock2", "get_time", {"tz": "Europe/Paris"},
               ['{"tz": "Eur', 'ope/Pa', 'ris"}'])]
for _t in ANTH_TOOLS:
    assert json.loads("".join(_t[3])) == _t[2]
ANTH_STREAM_ERROR = ('{"type": "error", "error": {"type": "overloaded_error", '
                     '"message": "Overloaded"}}')
ANTH_MESSAGE_STOP = '{"type":"message_stop"              }'   # padded like real recordings
REQ_COUNTER = [0]


def anth_user_texts(content):
    """Directive search: string content or the text of {"type":"text"} blocks."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for b in content:
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str):
                yield b["text"]


def anth_all_texts(content):
    """Token counting: strings, text blocks and text nested in tool_result blocks."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for b in content:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "text" and isinstance(b.get("text"), str):
                yield b["text"]
            elif b.get("type") == "tool_result":
                yield from anth_all_texts(b.get("content"))


def anth_input_tokens(body):
    n = sum(len(t) for t in anth_all_texts(body.get("system")))
    msgs = body.get("messages") if isinstance(body.get("messages"), list) else []
    n += sum(len(t) for m in msgs if isinstance(m, dict) for t in anth_all_texts(m.get("content")))
    return max(1, math.ceil(n / 4))


def anth_error_body(etype, message, rid):
    return dumps({"type": "error", "error": {"type": etype, "message": message},
                  "request_id": rid})


def anth_validate(headers, body):
    """Return (status, error type, message, what) for an invalid request, else None."""
    if not (headers.get("x-api-key") or "").strip():
        return 401, "authentication_error", "invalid x-api-key", "x-api-key"
    if not (headers.get("anthropic-version") or "").strip():
        return (400, "invalid_request_error", "anthropic-version: header is required",
                "anthropic-version")
    if not isinstance(body, dict):
        return (400, "invalid_request_error",
                "There was an error parsing the body of your request as JSON.", None)
    for field, ok, kind in (("model", lambda v: isinstance(v, str), "string"),
                            ("messages", lambda v: isinstance(v, list), "list"),
                            ("max_tokens", lambda v: isinstance(v, int)
                             and not isinstance(v, bool), "integer")):
        if field not in body:
            return 400, "invalid_request_error", "%s: Field required" % field, field
        if not ok(body[field]):
            return (400, "invalid_request_error",
                    "%s: Input should be a valid %s" % (field, kind), field)
    return None


# Protocol plugins: every t/mock_<name>.py beside this script is loaded at
# start. Each defines route(handler, method, path, raw) -> bool, True when
# it answered; it reaches this module's helpers (directives, dumps,
# Disconnected, the Handler methods) through "import __main__ as mock".
PLUGINS = []


def load_plugins():
    import glob
    import importlib.util
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "mock_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        PLUGINS.append(mod)


def plugin_route(handler, method, path, raw):
    for mod in PLUGINS:
        if mod.route(handler, method, path, raw):
            return True
    return False


class Disconnected(Exception):
    """The client went away (write failed or EOF seen during a pause)."""


class Handler(BaseHTTPRequestHandler):
    server_version = "mock-upstream/1.0"
    protocol_version = "HTTP/1.1"      # keep-alive: every reply has a length or is chunked
    was_reset = False

    def log_message(self, fmt, *args):
        if VERBOSE:
            sys.stderr.write("mock-upstream: %s\n" % (fmt % args))

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---------------------------------------------------------------- low level I/O
    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_raw(self, data):
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.close_connection = True
            raise Disconnected()

    def send_chunk(self, text):
        data = text.encode()
        self.send_raw(b"%x\r\n%s\r\n" % (len(data), data))

    def pause(self, secs):
        """Sleep secs seconds, but notice a client disconnect (EOF/RST) meanwhile."""
        end = time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.connection], [], [], left)
            if not r:
                continue
            try:
                peek = self.connection.recv(1, socket.MSG_PEEK)
            except OSError:
                peek = b""
            if not peek:
                self.close_connection = True
                raise Disconnected()
            time.sleep(max(0.0, end - time.monotonic()))  # pipelined data: plain sleep

    def abort_connection(self):
        """Close abruptly: SO_LINGER 0 makes the kernel send RST instead of FIN."""
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(sock.detach())  # detach: rfile/wfile refs must not keep the fd open
        except OSError:
            pass
        self.close_connection = self.was_reset = True

    def start_response(self, code, ctype, extra=(), length=None):
        try:
            phrase = http.HTTPStatus(code).phrase
        except ValueError:
            phrase = "Site Overloaded" if code == 529 else "Mock Fault"
        self.send_response(code, phrase)
        self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        try:
            self.end_headers()
        except OSError:
            self.close_connection = True
            raise Disconnected()

    def send_body(self, code, body, ctype="application/json", extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.start_response(code, ctype, extra, len(data))
        self.send_raw(data)

    # ---------------------------------------------------------------- bookkeeping
    def log_request_entry(self, path, model, body):
        # "peer" (client ip:port) tells whether the gateway reused a connection.
        self.reported_usage = None
        entry = {"t": time.time(), "path": path, "model": model,
                 "peer": "%s:%d" % self.client_address[:2],
                 "proxied_host": getattr(self, "proxied_host", None),
                 "headers": {}, "body": body, "aborted": False, "outcome": "ok",
                 "done": False, "sent": []}
        self.log_entry = entry
        for k, v in self.headers.items():
            k = k.lower()
            entry["headers"][k] = entry["headers"][k] + ", " + v if k in entry["headers"] else v
        with LOCK:
            STATE["total"] += 1
            STATE["log"].append(entry)
            n = 0
            if model is not None:
                n = STATE["requests"][model] = STATE["requests"].get(model, 0) + 1
        return entry, n

    def note_sent(self):
        """Log the time the writing of a stream event begins (entry["sent"]): no part
        of the event can reach anyone before it."""
        entry = getattr(self, "log_entry", None)
        if entry is not None:
            with LOCK:
                entry["sent"].append(time.time())

    def finish_entry(self, entry, model, outcome, aborted):
        with LOCK:
            entry["outcome"] = "aborted" if aborted else outcome
            entry["aborted"] = aborted
            entry["usage"] = getattr(self, "reported_usage", None)
            entry["done"] = True
            entry["t_end"] = time.time()
            if model is not None:
                key = "aborted" if aborted else "completed"
                STATE[key][model] = STATE[key].get(model, 0) + 1

    # ---------------------------------------------------------------- routing
    def do_GET(self):
        self.read_body()
        try:
            self.route_get(self.path.split("?", 1)[0])
        except Disconnected:
            pass

    def route_get(self, path):
        if plugin_route(self, "GET", path, b""):
            return
        if path == "/_mock/faults":
            with LOCK:
                snap = dumps(FAULTS)
            self.send_body(200, snap)
            return
        if path == "/_mock/stats":
            with LOCK:
                snap = dumps(dict(STATE, log=list(STATE["log"])))
            self.send_body(200, snap)
        elif path in ("/v1/models", "/models"):
            self.log_request_entry(path, None, None)
            data = [{"id": i, "object": "model", "created": 1700000000, "owned_by": "mock"}
                    for i in ("mock", "mock-large")]
            self.send_body(200, dumps({"object": "list", "data": data}))
        else:
            self.not_found(path)

    def do_POST(self):
        raw = self.read_body()
        path = self.path.split("?", 1)[0]
        # As a forward HTTP proxy the request line has an absolute URI
        # ("POST http://host/v1/... HTTP/1.1"): serve it and note the host.
        self.proxied_host = None
        if path.startswith("http://"):
            rest = path[len("http://"):]
            self.proxied_host, _, tail = rest.partition("/")
            path = "/" + tail
        try:
            if self.replay(path, raw):
                pass
            elif path == "/_mock/faults":
                try:
                    req = json.loads(raw.decode("utf-8") or "{}")
                    new = {str(k): parse_kv(str(v)) for k, v in req.items()}
                except (ValueError, UnicodeDecodeError, AttributeError):
                    self.send_body(400, error_body(400, "expected {\"MODEL\": \"k=v,...\"}"))
                    return
                with LOCK:
                    FAULTS.clear()
                    FAULTS.update(new)
                self.send_body(200, dumps({"ok": True, "faults": req}))
            elif path == "/_mock/keys":
                try:
                    req = json.loads(raw.decode("utf-8") or "{}")
                    new = {k: set(str(x) for x in req.get(k, [])) for k in ("revoked", "quota")}
                except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
                    self.send_body(400, error_body(400, "expected {\"revoked\": [KEY,..]}"))
                    return
                with LOCK:
                    KEYS.update(new)
                self.send_body(200, dumps({"ok": True}))
            elif path == "/_mock/reset":
                reset_state()
                self.send_body(200, dumps({"ok": True}))
            elif path in ("/v1/chat/completions", "/chat/completions"):
                self.chat(path, raw)
            elif path in ("/v1/messages", "/messages"):
                self.anthropic(path, raw)
            elif path in ("/v1/messages/count_tokens", "/messages/count_tokens"):
                self.anth_count(path, raw)
            elif plugin_route(self, "POST", path, raw):
                pass
            else:
                self.not_found(path)
        except Disconnected:
            pass

    # A recorded transcript, served as it is: "replay=DIR/FILE" anywhere in
    # the request line or body (in the model id, whichever protocol puts it
    # where) names a file under t/data/. A .sse, .txt or .jsonl file is
    # streamed a line group at a time, anything else sent as one JSON body.
    REPLAY = re.compile(rb"replay=([A-Za-z0-9_-]+/[A-Za-z0-9_.-]+)")

    def replay(self, path, raw):
        from urllib.parse import unquote
        m = self.REPLAY.search(unquote(self.path).encode() + b" " + raw)
        if m is None:
            return False
        name = m.group(1).decode()
        file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", name)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        entry, _ = self.log_request_entry(path, "replay=" + name, body)
        try:
            with open(file, "rb") as f:
                data = f.read()
        except OSError:
            self.send_body(404, error_body(404, "no transcript %s" % name))
            return True
        if not name.endswith((".sse", ".txt", ".jsonl")):
            self.send_body(200, data)
            self.finish_entry(entry, "replay=" + name, "ok", False)
            return True
        ctype = "application/x-ndjson" if name.endswith(".jsonl") else "text/event-stream"
        self.start_response(200, ctype)
        # SSE events end in a blank line (LF or CRLF); NDJSON in a newline.
        sep = b"\n" if name.endswith(".jsonl") else b"\n\n"
        if b"\r\n\r\n" in data:
            sep = b"\r\n\r\n"
        pieces = data.split(sep)
        for i, piece in enumerate(pieces):
            if piece == b"" and i == len(pieces) - 1:
                break
            self.send_raw(b"%x\r\n%s\r\n" % (len(piece + sep), piece + sep))
        self.send_raw(b"0\r\n\r\n")
        self.finish_entry(entry, "replay=" + name, "ok", False)
        return True

    def not_found(self, path):
        self.send_body(404, error_body(404, "Unknown request URL: %s %s" % (self.command, path)))

    # ---------------------------------------------------------------- chat
    def chat(self, path, raw):
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            entry, _ = self.log_request_entry(path, None, raw.decode("utf-8", "replace"))
            self.finish_entry(entry, None, "fault:bad_json", False)
            self.send_body(400, error_body(400, "We could not parse the JSON body of your request."))
            return
        model = body.get("model") if isinstance(body.get("model"), str) else "mock"
        entry, nth = self.log_request_entry(path, model, body)
        refused = key_refusal(self.headers)
        if refused is not None:
            code, ecode, message = refused
            etype = "insufficient_quota" if code == 429 else "invalid_request_error"
            self.send_body(code, dumps({"error": {"message": message, "type": etype,
                                                  "param": None, "code": ecode}}))
            self.finish_entry(entry, model, "fault:key_" + ("quota" if code == 429 else "revoked"),
                              False)
            return
        d = directives(body, model)
        if "times" in d and nth > num(d, "times"):
            for k in FAULT_KEYS:
                d.pop(k, None)
        stream = body.get("stream") is True
        outcome = "ok"
        for k in ("status", "reset", "malformed", "truncate_after", "reset_after", "stall_after",
                  "first_byte_delay", "stream_error"):
            if k in d and (stream or k in ("status", "reset", "malformed", "first_byte_delay")):
                outcome = "fault:%s=%s" % (k, d[k]) if k != "reset" else "fault:reset"
                break
        try:
            self.pause(num(d, "first_byte_delay"))
            if "reset" in d and num(d, "reset"):
                self.abort_connection()
            if self.was_reset:
                pass
            elif "status" in d:
                code = int(num(d, "status", 500))
                extra = [("Retry-After", d["retry_after"])] if "retry_after" in d else []
                message = d.get("error_message", "mock fault %d" % code)
                if num(d, "leak"):
                    message = leaked(self.headers, message)
                body_out = json.loads(error_body(code, message))
                if "error_code" in d:
                    body_out["error"]["code"] = d["error_code"]
                self.send_body(code, dumps(body_out), extra=extra)
            elif stream:
                outcome = self.chat_stream(body, model, d, outcome)
            elif not self.was_reset:
                self.chat_plain(body, model, d)
            # an abrupt reset is neither "completed" nor "aborted"
            self.finish_entry(entry, None if self.was_reset else model, outcome, False)
        except Disconnected:
            self.finish_entry(entry, model, "aborted", True)

    def chat_plain(self, body, model, d):
        if "malformed" in d and num(d, "malformed"):
            self.send_body(200, '{"id": "broken", "choices": [')
            return
        with LOCK:
            ID_COUNTER[0] += 1
            cid = "chatcmpl-mock%d" % ID_COUNTER[0]
        n = int(num(d, "chunks", 3))
        msg = {"role": "assistant", "content": "".join("tok%d " % i for i in range(n))}
        finish = "stop"
        if "huge" in d:
            msg["content"] = "x" * int(num(d, "huge"))
        if num(d, "echo"):
            msg["content"] = json.dumps(body)
        if num(d, "say"):
            msg["content"] = "".join(said(body, d))
        if num(d, "reasoning"):
            msg["reasoning_content"] = "think0 think1 "
        if num(d, "tool"):
            n, finish = len(TOOL_ARGS), "tool_calls"
            msg["content"] = None
            msg["tool_calls"] = [{"id": "call_mock1", "type": "function", "function": {
                "name": "get_weather", "arguments": "".join(said(body, d))
                if num(d, "say") else "".join(TOOL_ARGS)}}]
        msg["refusal"] = None
        resp = {"id": cid, "object": "chat.completion", "created": int(time.time()),
                "model": model.split("@", 1)[0],
                "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}],
                "usage": self.usage_report(body, d, n),
                "system_fingerprint": "fp_mock"}
        if resp["usage"] is None:
            del resp["usage"]
        self.send_body(200, dumps(resp))

    def usage_report(self, body, d, n):
        """The usage object of a chat answer (None with usage=0); noted for the log."""
        if "usage" in d and not num(d, "usage", 1):
            return None
        p = int(num(d, "prompt_tokens", prompt_tokens(body)))
        c = int(num(d, "completion_tokens", n))
        if num(d, "greedy"):
            c = greedy_tokens(body)
        self.reported_usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        if "cost" in d:
            self.reported_usage["cost"] = num(d, "cost")
        if "cached" in d:
            self.reported_usage["prompt_tokens_details"] = {"cached_tokens": int(num(d, "cached"))}
        if "cache_hit" in d:
            hit = int(num(d, "cache_hit"))
            self.reported_usage["prompt_cache_hit_tokens"] = hit
            self.reported_usage["prompt_cache_miss_tokens"] = max(0, p - hit)
        return dict(self.reported_usage)

    def chat_stream(self, body, model, d, outcome):
        with LOCK:
            ID_COUNTER[0] += 1
            cid = "chatcmpl-mock%d" % ID_COUNTER[0]
        opts = body.get("stream_options")
        usage = isinstance(opts, dict) and opts.get("include_usage") is True
        created, base_model = int(time.time()), model.split("@", 1)[0]
        delay, comments = num(d, "delay"), bool(num(d, "comments"))
        tool, reasoning = bool(num(d, "tool")), bool(num(d, "reasoning"))
        n = len(TOOL_ARGS) if tool else int(num(d, "chunks", 3))
        pieces = said(body, d) if num(d, "say") else None
        args = pieces if tool and pieces is not None else TOOL_ARGS
        if pieces is not None:
            n = len(pieces)
        state = {"first": True}

        def chunk(delta, finish=None, choices=True):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": base_model, "system_fingerprint": "fp_mock",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish}] if choices else []}
            if usage:
                obj["usage"] = None
            return obj

        def event(payload):
            if not state["first"] and delay > 0:
                self.pause(delay)
            state["first"] = False
            if comments:
                self.send_chunk(": OPENROUTER PROCESSING\n\n")
            self.note_sent()
            self.send_chunk("data: %s\n\n" % (payload if isinstance(payload, str) else dumps(payload)))

        self.start_response(200, "text/event-stream", [("Cache-Control", "no-cache")])
        if tool:
            event(chunk({"role": "assistant", "content": None}))
        elif reasoning:
            event(chunk({"role": "assistant", "content": None, "reasoning_content": ""}))
        else:
            event(chunk({"role": "assistant", "content": ""}))
        if "malformed" in d and num(d, "malformed"):
            event('{"broken')
        if reasoning and not tool:
            for i in range(2):
                event(chunk({"content": None, "reasoning_content": "think%d " % i}))
        for i in range(n + 1):
            # fault points: checked when exactly i content chunks have been sent
            if "stall_after" in d and i == int(num(d, "stall_after")):
                self.pause(num(d, "stall", 30))
            if "reset_after" in d and i == int(num(d, "reset_after")):
                self.abort_connection()
                return outcome
            if "truncate_after" in d and i == int(num(d, "truncate_after")):
                self.send_raw(b"0\r\n\r\n")
                return outcome
            if "stream_error" in d and i == int(num(d, "stream_error")):
                message = "mock stream error"
                if num(d, "leak"):
                    message = leaked(self.headers, message)
                event({"error": {"message": message, "type": "server_error",
                                 "param": None, "code": None}})
                self.send_raw(b"0\r\n\r\n")
                self.close_connection = True
                return outcome
            if i == n:
                break
            if tool and i == 0:
                event(chunk({"tool_calls": [{"index": 0, "id": "call_mock1", "type": "function",
                      "function": {"name": "get_weather", "arguments": ""}}]}))
            if tool:
                event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i]}}]}))
            elif reasoning:
                event(chunk({"content": "tok%d " % i, "reasoning_content": None}))
            elif pieces is not None:
                event(chunk({"content": pieces[i]}))
            else:
                event(chunk({"content": "tok%d " % i}))
        event(chunk({}, "tool_calls" if tool else "stop"))
        report = self.usage_report(body, d, n) if usage else None
        if report is not None:
            u = chunk({}, choices=False)
            u["usage"] = report
            event(u)
        event("[DONE]")
        self.send_raw(b"0\r\n\r\n")
        return outcome

    # ---------------------------------------------------------------- Anthropic Messages
    def anth_count(self, path, raw):
        """Anthropic's POST /v1/messages/count_tokens: {"input_tokens": P}, logged."""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        model = body.get("model") if isinstance(body, dict) and \
            isinstance(body.get("model"), str) else None
        entry, _ = self.log_request_entry(path, model, body)
        if not (self.headers.get("x-api-key") or "").strip():
            self.send_body(401, anth_error_body("authentication_error", "invalid x-api-key",
                                                "req_mockcount"))
            self.finish_entry(entry, model, "fault:invalid:x-api-key", False)
            return
        if model is None or not isinstance(body.get("messages"), list):
            self.send_body(400, anth_error_body("invalid_request_error",
                                                "messages: Field required", "req_mockcount"))
            self.finish_entry(entry, model, "fault:invalid:messages", False)
            return
        self.send_body(200, dumps({"input_tokens": anth_input_tokens(body)}))
        self.finish_entry(entry, model, "ok", False)

    def anthropic(self, path, raw):
        with LOCK:
            REQ_COUNTER[0] += 1
            rid = "req_mock%d" % REQ_COUNTER[0]
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        model = None
        if isinstance(body, dict):
            model = body.get("model") if isinstance(body.get("model"), str) else None
            entry, nth = self.log_request_entry(path, model, body)
        else:
            entry, nth = self.log_request_entry(path, None, raw.decode("utf-8", "replace"))
        rid_hdr = [("request-id", rid)]
        refused = key_refusal(self.headers)
        if refused is not None:
            code, _, message = refused
            etype = "rate_limit_error" if code == 429 else "authentication_error"
            self.send_body(code, anth_error_body(etype, message, rid), extra=rid_hdr)
            self.finish_entry(entry, model, "fault:key_" + ("quota" if code == 429 else "revoked"),
                              False)
            return
        try:
            bad = anth_validate(self.headers, body)
            if bad:
                code, etype, message, what = bad
                self.finish_entry(entry, model, "fault:invalid:%s" % what if what
                                  else "fault:bad_json", False)
                self.send_body(code, anth_error_body(etype, message, rid), extra=rid_hdr)
                return
        except Disconnected:
            self.finish_entry(entry, model, "aborted", True)
            return
        d = directives(body, model, anth_user_texts)
        if "times" in d and nth > num(d, "times"):
            for k in ANTH_FAULT_KEYS:
                d.pop(k, None)
        stream = body.get("stream") is True
        outcome = "ok"
        for k in ("status", "reset", "malformed", "truncate_after", "reset_after", "stall_after",
                  "first_byte_delay", "stream_error"):
            if k in d and (stream or k in ("status", "reset", "malformed", "first_byte_delay")):
                outcome = "fault:%s=%s" % (k, d[k]) if k != "reset" else "fault:reset"
                break
        try:
            self.pause(num(d, "first_byte_delay"))
            if "reset" in d and num(d, "reset"):
                self.abort_connection()
            if self.was_reset:
                pass
            elif "status" in d:
                code = int(num(d, "status", 500))
                etype = ANTH_ERROR_TYPES.get(code, "api_error")
                message = "Overloaded" if code == 529 else "mock fault %d" % code
                message = d.get("error_message", message)
                if num(d, "leak"):
                    message = leaked(self.headers, message)
                extra = list(rid_hdr)
                if "retry_after" in d:
                    extra.append(("Retry-After", d["retry_after"]))
                if code in (429, 529):
                    extra.append(("x-should-retry", "true"))
                self.send_body(code, anth_error_body(etype, message, rid), extra=extra)
            elif stream:
                outcome = self.anth_stream(body, model, d, outcome, rid_hdr)
            else:
                self.anth_plain(body, model, d, rid_hdr)
            self.finish_entry(entry, None if self.was_reset else model, outcome, False)
        except Disconnected:
            self.finish_entry(entry, model, "aborted", True)

    @staticmethod
    def anth_answer(body, d):
        """(content blocks, stop_reason, stop_sequence, output_tokens) for a request."""
        ntools = min(2, max(0, int(num(d, "tool"))))
        if ntools:
            content = [{"type": "text", "text": "".join(ANTH_TEXT)}]
            for tid, name, inp, _ in ANTH_TOOLS[:ntools]:
                content.append({"type": "tool_use", "id": tid, "name": name, "input": inp})
            stop, out = "tool_use", len(ANTH_TEXT) + sum(1 + len(t[3]) for t in ANTH_TOOLS[:ntools])
        else:
            n = int(num(d, "chunks", 3))
            text = "".join("tok%d " % i for i in range(n))
            if "huge" in d:
                text = "x" * int(num(d, "huge"))
            if num(d, "echo"):
                text = json.dumps(body)
            if num(d, "say"):
                text = "".join(said(body, d, anth_user_texts))
            content, stop, out = [{"type": "text", "text": text}], "end_turn", n
        stop = d.get("stop_reason") or stop
        seq = None
        if stop == "stop_sequence":
            ss = body.get("stop_sequences")
            if isinstance(ss, list) and ss and isinstance(ss[0], str):
                seq = ss[0]
        return content, stop, seq, out

    @staticmethod
    def new_msg_id():
        with LOCK:
            ID_COUNTER[0] += 1
            return "msg_mock%d" % ID_COUNTER[0]

    def anth_plain(self, body, model, d, rid_hdr):
        if "malformed" in d and num(d, "malformed"):
            self.send_body(200, '{"model": "broken", "content": [', extra=rid_hdr)
            return
        content, stop, seq, out = self.anth_answer(body, d)
        resp = {"model": model.split("@", 1)[0], "id": self.new_msg_id(), "type": "message",
                "role": "assistant", "content": content, "stop_reason": stop,
                "stop_sequence": seq,
                "usage": {"input_tokens": int(num(d, "input_tokens", anth_input_tokens(body))),
                          "cache_creation_input_tokens": int(num(d, "cache_write")),
                          "cache_read_input_tokens": int(num(d, "cached")),
                          "output_tokens": out}}
        self.send_body(200, dumps(resp), extra=rid_hdr)

    def anth_stream(self, body, model, d, outcome, rid_hdr):
        mid = self.new_msg_id()
        delay = num(d, "delay")
        content, stop, seq, out = self.anth_answer(body, d)
        state = {"first": True}

        def event(name, payload):
            if not state["first"] and delay > 0:
                self.pause(delay)
            state["first"] = False
            data = payload if isinstance(payload, str) else dumps(payload)
            self.note_sent()
            self.send_chunk("event: %s\ndata: %s\n\n" % (name, data))

        # plan: ("delta", payload) for content deltas (fault points), ("ev", name, payload)
        plan = [("ev", "content_block_start", {"type": "content_block_start", "index": 0,
                                               "content_block": {"type": "text", "text": ""}}),
                ("ev", "ping", '{"type": "ping"}')]

        def delta(index, dl):
            plan.append(("delta", {"type": "content_block_delta", "index": index, "delta": dl}))

        def block_stop(index):
            plan.append(("ev", "content_block_stop", {"type": "content_block_stop",
                                                      "index": index}))
        tools = [b for b in content if b["type"] == "tool_use"]
        if tools:
            for piece in ANTH_TEXT:
                delta(0, {"type": "text_delta", "text": piece})
            block_stop(0)
            for i, (tid, name, _, frags) in enumerate(ANTH_TOOLS[:len(tools)], 1):
                plan.append(("ev", "content_block_start", {
                    "type": "content_block_start", "index": i, "content_block": {
                        "type": "tool_use", "id": tid, "name": name, "input": {}}}))
                for frag in [""] + frags:
                    delta(i, {"type": "input_json_delta", "partial_json": frag})
                block_stop(i)
        else:
            text = content[0]["text"]
            if "huge" in d or num(d, "echo"):
                pieces = [text]
            elif num(d, "say"):
                pieces = said(body, d, anth_user_texts)
            else:
                pieces = ["tok%d " % i for i in range(int(num(d, "chunks", 3)))]
            for piece in pieces:
                delta(0, {"type": "text_delta", "text": piece})
            block_stop(0)

        def fault_point(i):
            """True when the stream was ended here (exactly i deltas sent)."""
            if "stall_after" in d and i == int(num(d, "stall_after")):
                self.pause(num(d, "stall", 30))
            if "reset_after" in d and i == int(num(d, "reset_after")):
                self.abort_connection()
                return True
            if "truncate_after" in d and i == int(num(d, "truncate_after")):
                self.send_raw(b"0\r\n\r\n")
                return True
            if "stream_error" in d and i == int(num(d, "stream_error")):
                event("error", ANTH_STREAM_ERROR)
                self.send_raw(b"0\r\n\r\n")
                self.close_connection = True
                return True
            return False

        self.start_response(200, "text/event-stream; charset=utf-8",
                            [("Cache-Control", "no-cache")] + rid_hdr)
        event("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "content": [],
            "model": model.split("@", 1)[0], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": int(num(d, "input_tokens", anth_input_tokens(body))),
                      "cache_creation_input_tokens": int(num(d, "cache_write")),
                      "cache_read_input_tokens": int(num(d, "cached")), "output_tokens": 1}}})
        if "malformed" in d and num(d, "malformed"):
            event("content_block_delta", '{"broken')
        sent = 0
        for item in plan:
            if item[0] == "delta":
                if fault_point(sent):
                    return outcome
                event("content_block_delta", item[1])
                sent += 1
            else:
                event(item[1], item[2])
        if fault_point(sent):
            return outcome
        event("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": stop, "stop_sequence": seq},
                                "usage": {"output_tokens": sent}})
        event("message_stop", ANTH_MESSAGE_STOP)
        self.send_raw(b"0\r\n\r\n")
        return outcome


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description="mock OpenAI-compatible upstream")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--port-file")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    VERBOSE = args.verbose
    reset_state()
    load_plugins()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256    # many gateway processes connect at once
    srv = Server((args.host, args.port), Handler)
    port = srv.server_address[1]
    if args.port_file:
        tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    sys.stderr.write("mock-upstream listening on %s:%d\n" % (args.host, port))
    sys.stderr.flush()

    def on_signal(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        srv.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
