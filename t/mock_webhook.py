"""mock_webhook.py: t/mock-upstream.py plugin: a webhook receiver for alerts.

  POST /_mock/webhook/NAME     records the body (JSON, or the text) with its
                               headers and arrival time; answers per the mode:
                               200 {"ok":true}, or 500 for the first N posts
                               ("fail"), or holds the connection for S seconds
                               before answering ("hang")
  GET  /_mock/webhooks         {"NAME": [{"t", "body", "headers", "answered"}, ...]}
  POST /_mock/webhooks/mode    {"NAME": {"fail": N, "hang": S}}: set the modes ({} clears)
  POST /_mock/webhooks/reset   clears the records (modes stay)
/_mock/reset leaves all of it.
"""
import json
import threading
import time

import __main__ as mock

LOCK = threading.Lock()
POSTS = {}      # name -> list of records
MODES = {}      # name -> {"fail": N, "hang": S}
FAILED = {}     # name -> 500s answered so far


def route(h, method, path, raw):
    if method == "GET" and path == "/_mock/webhooks":
        with LOCK:
            snap = json.dumps(POSTS)
        h.send_body(200, snap)
        return True
    if method != "POST":
        return False
    if path == "/_mock/webhooks/mode":
        try:
            req = json.loads(raw.decode("utf-8") or "{}")
        except ValueError:
            h.send_body(400, '{"error":"expected JSON"}')
            return True
        with LOCK:
            MODES.clear()
            MODES.update(req)
            FAILED.clear()
        h.send_body(200, '{"ok":true}')
        return True
    if path == "/_mock/webhooks/reset":
        with LOCK:
            POSTS.clear()
            FAILED.clear()
        h.send_body(200, '{"ok":true}')
        return True
    if not path.startswith("/_mock/webhook/"):
        return False
    name = path[len("/_mock/webhook/"):]
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        body = raw.decode("utf-8", "replace")
    rec = {"t": time.time(), "body": body,
           "headers": {k: v for k, v in h.headers.items()}, "answered": 200}
    with LOCK:
        mode = dict(MODES.get(name, {}))
        code = 200
        if FAILED.get(name, 0) < int(mode.get("fail", 0)):
            FAILED[name] = FAILED.get(name, 0) + 1
            code = 500
        rec["answered"] = code
        POSTS.setdefault(name, []).append(rec)
    if mode.get("hang"):
        rec["answered"] = "hung"
        time.sleep(float(mode["hang"]))
        try:
            h.send_body(200, '{"ok":true}')
        except Exception:
            pass
        return True
    h.send_body(code, '{"ok":%s}' % ("true" if code == 200 else "false"))
    return True
