#!/bin/bash
# t0500-memory.sh: a long-lived FastCGI process must not grow per request.
# Thousands of mixed requests (plain, streamed, retried, fallen back,
# refused) through lighttpd; the gateway's resident memory after them is
# compared with its memory after a warm-up.
. "$(dirname "$0")/lib.sh"

# An ASan build (--enable-asan) keeps freed memory in quarantine, which
# would look like growth; shrink it. Its own leak check replaces valgrind.
asan=
if ldd "$LLMGATE" | grep -q libasan; then
	asan=1
	export ASAN_OPTIONS=quarantine_size_mb=1:detect_leaks=1
fi

setup_tmp
start_mock
export MOCK_API_KEY=sk-mock-upstream-secret LLMGATE_MASTER_KEY=sk-master-t0500
CONF=$TMPDIR_T/llmgate.ini
write_basic_config "$CONF"
# A pool of exactly 4 threads for 4 clients: the elastic pool would start
# a few more as connections overlap, and their stacks and heaps would count
# as growth here (t0410 checks that threads come and go).
sed -i 's/^max_body = 65536$/&\nworkers_max = 4/' "$CONF"
cat >>"$CONF" <<'EOF'

[model flaky]
provider = mock
upstream = mock@status=503
fallback = mock-ok
EOF
start_lighttpd "$CONF"

pid=
for p in $(_descendants "${_server_pids[-1]}"); do
	[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "$LLMGATE")" ] && pid=$p
done
ok "found the gateway process" test -n "$pid"

load() {	# N: requests of every kind, 4 clients at once; prints failures
	python3 - "$GW_URL" "$LLMGATE_MASTER_KEY" "$1" <<'EOF'
import http.client, json, sys, threading, urllib.parse
url, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlsplit(url)
chat = lambda **kw: json.dumps(dict(messages=[{"role": "user", "content": "hi"}], **kw))
kinds = [
    ("POST", "/v1/chat/completions", chat(model="mock-ok"), 200),
    ("POST", "/v1/chat/completions", chat(model="mock-ok", stream=True), 200),
    ("POST", "/v1/chat/completions", chat(model="mock-ok", stream=True,
        stream_options={"include_usage": True}), 200),
    ("POST", "/v1/chat/completions", chat(model="flaky"), 200),
    ("POST", "/v1/chat/completions", '{"model": "mock-ok", "messages": [', 400),
    ("POST", "/v1/chat/completions", chat(model="unknown-model"), 404),
    ("GET", "/v1/models", None, 200),
    ("GET", "/v1/providers", None, 200),
    ("GET", "/health", None, 200),
]
bad = []
def worker(start):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    for i in range(start, n, 4):
        m, path, body, want = kinds[i % len(kinds)]
        c.request(m, path, body=body, headers={"Authorization": "Bearer " + key,
                                               "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != want:
            bad.append("%s %s -> %d" % (m, path, r.status))
t = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
[x.start() for x in t]
[x.join() for x in t]
print(len(bad), bad[:3])
EOF
}

# Anonymous memory (heap, thread stacks): where a leak shows. The Berkeley
# DB cache is a file-backed shared mapping of data_dir/__db.* that grows
# to its configured size as rows are written; it is reported, not judged.
rss() { awk '/^RssAnon/ {print $2}' "/proc/$pid/status"; }
vmrss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

out=$(load 600)
is "$out" "0 []" "warm-up: 600 requests answered as expected"
before=$(rss) vbefore=$(vmrss)
out=$(load 4500)
is "$out" "0 []" "4500 more requests answered as expected"
after=$(rss)
diag "gateway anonymous RSS after warm-up ${before} kB, after 4500 more ${after} kB (VmRSS $vbefore -> $(vmrss) kB)"
# ASan's allocator keeps growing caches of its own; LeakSanitizer at exit
# (checked below) is the leak check there.
limit=512
[ -z "$asan" ] || limit=4096
ok "anonymous RSS grew by less than $limit kB over 4500 requests ($before -> $after kB)" \
    test $((after - before)) -lt "$limit"
is "$(_descendants "${_server_pids[-1]}" | grep -cx "$pid")" 1 "the same process served them all"
log=$SERVER_LOG
stop_server
if [ -n "$asan" ]; then
	unlike "$(cat "$log")" 'Sanitizer' "ASan: no report when the FastCGI process exits"
	like "$(cat "$log")" 'signal 15: finishing' "ASan: the process exited through its shutdown path"
fi

# The same code under valgrind, one request per run in CGI mode: no invalid
# access and nothing definitely or indirectly lost.
vg() {	# label body -> checks valgrind's (or ASan's) verdict on one CGI request
	local log=$TMPDIR_T/vg.$1 out checker
	checker=(valgrind --suppressions="$top_srcdir/t/valgrind.supp"
	    --leak-check=full --errors-for-leak-kinds=definite,indirect
	    --error-exitcode=99 --log-file="$log")
	[ -z "$asan" ] || checker=()
	out=$(printf '%s' "$2" | env REQUEST_METHOD=POST REQUEST_URI=/v1/chat/completions \
	    CONTENT_LENGTH=${#2} HTTP_AUTHORIZATION="Bearer $LLMGATE_MASTER_KEY" \
	    LLMGATE_CONFIG="$CONF" "${checker[@]}" "$LLMGATE" 2>"$log.stderr")
	is "$?" 0 "memory check $1: exit status"
	if [ -z "$asan" ]; then
		like "$(cat "$log")" 'ERROR SUMMARY: 0 errors' "valgrind $1: no errors"
	else
		unlike "$(cat "$log.stderr")" 'Sanitizer' "ASan $1: no report"
	fi
	like "$out" '^Status: ' "memory check $1: answered"
}
vg chat '{"model":"mock-ok","messages":[{"role":"user","content":"hi"}]}'
vg stream '{"model":"mock-ok","stream":true,"messages":[{"role":"user","content":"hi"}]}'
vg fallback '{"model":"flaky","messages":[{"role":"user","content":"hi"}]}'
vg badjson '{"model":"mock-ok","messages":[{"role":"user","content":'

done_testing
