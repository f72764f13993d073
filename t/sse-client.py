#!/usr/bin/python3
"""sse-client.py - an HTTP/1.1 client for the tests that timestamps each line
of the answer in the process that reads the socket.

Usage: python3 t/sse-client.py [-H 'Name: value']... [-d BODY | -d @FILE]
                               [-D HEADER-FILE] [-m MAX-SECONDS] [--leave-after N] URL

  -d BODY       POST BODY (or the contents of FILE with @FILE); without -d: GET
  -H HEADER     an extra request header (repeatable)
  -D FILE       write the status line and the response headers to FILE
  -m SECONDS    give up after SECONDS in all (default 30): exit 28, as curl does
  --leave-after N  close the connection (the client leaves) once N lines starting
                with "data:" have been read: exit 0

Output, one line per non-empty line of the status line and of the (de-chunked)
body, flushed as it is read:

  <time> <line>

<time> is the wall clock (time.time(), the clock of the mock's log) with
microseconds, taken when the recv() that completed the line returned: a line is
timed when it reached this process, not when a later reader got around to it.
Exit status 0 when the answer was read to its end (or --leave-after), 28 on the
time limit, 1 on any other failure (message on stderr).

Only http:// URLs on loopback are needed by the tests; no TLS, no proxies.
"""

import socket
import sys
import time
import urllib.parse


class Fail(Exception):
    pass


class Leave(Exception):
    pass


class Reader:
    """The socket, read in pieces; each piece carries the time it arrived."""

    def __init__(self, sock, deadline):
        self.sock, self.deadline = sock, deadline
        self.buf, self.t = b"", time.time()

    def fill(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError()
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        self.t = time.time()
        if not data:
            return False
        self.buf += data
        return True

    def line(self):
        """One CRLF- or LF-terminated line of the head, without its end."""
        while b"\n" not in self.buf:
            if not self.fill():
                raise Fail("connection closed in the response head")
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def take(self, n):
        """Up to n bytes that are already here or arrive with one recv."""
        if not self.buf and not self.fill():
            return b""
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


class Lines:
    """Body bytes in, "<time> <line>" out."""

    def __init__(self, leave_after):
        self.part, self.data_lines, self.leave_after = b"", 0, leave_after

    def feed(self, data, t):
        self.part += data
        while b"\n" in self.part:
            line, self.part = self.part.split(b"\n", 1)
            self.emit(line.rstrip(b"\r"), t)

    def emit(self, line, t):
        if not line:
            return
        text = line.decode("utf-8", "replace")
        sys.stdout.write("%.6f %s\n" % (t, text))
        sys.stdout.flush()
        if text.startswith("data:"):
            self.data_lines += 1
            if self.leave_after and self.data_lines >= self.leave_after:
                raise Leave()

    def end(self, t):
        if self.part:
            self.emit(self.part.rstrip(b"\r"), t)
            self.part = b""


def read_chunked(r, out):
    while True:
        size_line = r.line()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise Fail("bad chunk size line %r" % size_line)
        if size == 0:
            return
        while size > 0:
            data = r.take(size)
            if not data:
                raise Fail("connection closed inside a chunk")
            size -= len(data)
            out.feed(data, r.t)
        r.line()            # the CRLF after the chunk


def read_plain(r, out, length):
    while length is None or length > 0:
        data = r.take(65536 if length is None else length)
        if not data:
            if length is not None:
                raise Fail("connection closed %d bytes before Content-Length" % length)
            return
        if length is not None:
            length -= len(data)
        out.feed(data, r.t)


def parse_args(argv):
    opts = {"headers": [], "data": None, "dump": None, "max": 30.0, "leave": 0, "url": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-H", "-d", "-D", "-m", "--leave-after") and i + 1 < len(argv):
            v = argv[i + 1]
            i += 2
            if a == "-H":
                opts["headers"].append(v)
            elif a == "-d":
                if v.startswith("@"):
                    with open(v[1:], "rb") as f:
                        opts["data"] = f.read()
                else:
                    opts["data"] = v.encode()
            elif a == "-D":
                opts["dump"] = v
            elif a == "-m":
                opts["max"] = float(v)
            else:
                opts["leave"] = int(v)
        elif not a.startswith("-") and opts["url"] is None:
            opts["url"] = a
            i += 1
        else:
            raise Fail("usage: sse-client.py [-H H]... [-d BODY|@FILE] [-D FILE] "
                       "[-m SECS] [--leave-after N] URL (bad argument %r)" % a)
    if opts["url"] is None:
        raise Fail("no URL")
    return opts


def request(opts):
    u = urllib.parse.urlsplit(opts["url"])
    if u.scheme != "http" or not u.hostname:
        raise Fail("only http://HOST[:PORT]/PATH URLs: %s" % opts["url"])
    port = u.port or 80
    path = (u.path or "/") + ("?" + u.query if u.query else "")
    method = "GET" if opts["data"] is None else "POST"
    head = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (u.hostname, port),
            "User-Agent: llmgate-tests-sse-client", "Accept: */*", "Connection: close"]
    head += opts["headers"]
    if opts["data"] is not None:
        head.append("Content-Length: %d" % len(opts["data"]))
    wire = ("\r\n".join(head) + "\r\n\r\n").encode() + (opts["data"] or b"")

    deadline = time.monotonic() + opts["max"]
    sock = socket.create_connection((u.hostname, port), timeout=opts["max"])
    try:
        sock.sendall(wire)
        r = Reader(sock, deadline)
        out = Lines(opts["leave"])
        status = r.line()
        out.emit(status, r.t)
        headers = []
        while True:
            h = r.line()
            if not h:
                break
            headers.append(h.decode("latin-1"))
        if opts["dump"]:
            with open(opts["dump"], "w") as f:
                f.write("".join(x + "\r\n" for x in [status.decode("latin-1")] + headers))
        fields = {}
        for h in headers:
            k, _, v = h.partition(":")
            fields[k.strip().lower()] = v.strip()
        if fields.get("transfer-encoding", "").lower() == "chunked":
            read_chunked(r, out)
        elif "content-length" in fields:
            read_plain(r, out, int(fields["content-length"]))
        else:
            read_plain(r, out, None)
        out.end(r.t)
    finally:
        sock.close()


def main():
    try:
        request(parse_args(sys.argv[1:]))
    except Leave:
        return 0
    except (TimeoutError, socket.timeout):
        sys.stderr.write("sse-client.py: time limit reached\n")
        return 28
    except (Fail, OSError, ValueError) as e:
        sys.stderr.write("sse-client.py: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
