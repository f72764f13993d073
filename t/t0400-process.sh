#!/bin/bash
# t0400-process.sh: the process model under lighttpd (contrib config,
# an elastic pool): concurrent streams in one process, warm upstream
# connections, and a clean SIGTERM that lets a stream in flight finish.
. "$(dirname "$0")/lib.sh"

setup_tmp
start_mock
export MOCK_API_KEY=sk-mock-upstream-secret LLMGATE_MASTER_KEY=sk-master-t0400
CONF=$TMPDIR_T/llmgate.ini
write_basic_config "$CONF"
start_lighttpd "$CONF"

gateway_pids() {	# the llmgate processes under this test's lighttpd
	local p
	for p in $(_descendants "${_server_pids[-1]}"); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "$LLMGATE")" ] && echo "$p"
	done
}

stream() {	# user text -> the SSE body
	gw_curl -N -H 'Content-Type: application/json' \
	    --data-binary "{\"model\":\"mock-ok\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$1\"}]}" \
	    "$GW_URL/v1/chat/completions"
}

pids=$(gateway_pids)
is "$(echo "$pids" | wc -w)" 1 "lighttpd runs one gateway process (max-procs 1)"
pid=$(echo "$pids" | head -n 1)
# Besides the main thread, the store watchdog and guard, the store keeper
# and the reclaim chore: workers_spare (4) idle workers, and one more once
# a request (the harness's /health) took one of them.
tasks=$(ls "/proc/$pid/task" | wc -l)
ok "it has 4 or 5 workers besides 5 other threads (got $tasks threads)" \
    test "$tasks" -ge 9 -a "$tasks" -le 10

# Three streams at once are served in parallel: the mock's log shows it
# answering all three at the same moment. Each takes it 3 s (7 events 0.5 s
# apart); served one after the other, they would never overlap. (Clocks in
# the shell would also count the clients' start-up on a loaded machine.)
curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null
jobs_=()
for i in 1 2 3; do
	stream 'MOCK{chunks=4,delay=0.5}' >"$TMPDIR_T/s$i" &
	jobs_+=($!)
done
wait "${jobs_[@]}"	# not a bare wait: the servers are children too
overlap=$(curl -sS "$MOCK_URL/_mock/stats" | python3 -c '
import json, sys
log = json.load(sys.stdin)["log"]
ok = len(log) == 3 and all(e.get("t_end") for e in log)
print("%.2f" % (min(e["t_end"] for e in log) - max(e["t"] for e in log)) if ok else "-1")')
ok "3 concurrent streams in flight upstream together (all three for ${overlap}s)" \
    python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > 0)' "$overlap"
for i in 1 2 3; do
	like "$(cat "$TMPDIR_T/s$i")" 'data: \[DONE\]' "stream $i complete"
done
is "$(gateway_pids)" "$pid" "all served by the same process"

# Upstream connections stay warm: 12 sequential requests use at most one
# connection per worker thread.
curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null
for i in $(seq 1 12); do
	gw_curl -o /dev/null -H 'Content-Type: application/json' \
	    --data-binary '{"model":"mock-ok","messages":[{"role":"user","content":"x"}]}' \
	    "$GW_URL/v1/chat/completions"
done
peers=$(curl -sS "$MOCK_URL/_mock/stats" | python3 -c '
import json, sys
log = json.load(sys.stdin)["log"]
print(len(log), len(set(e["peer"] for e in log)))')
is "${peers% *}" 12 "12 upstream requests"
ok "at most 4 upstream connections for 12 requests (got ${peers#* })" test "${peers#* }" -le 4

# SIGTERM: the stream in flight completes, then the process exits. The
# signal goes once the client has the stream's first event (curl -N writes
# it as it arrives), with 3 s of the stream still to come.
stream 'MOCK{chunks=4,delay=0.5}' >"$TMPDIR_T/term" &
spid=$!
ok "the stream is under way" wait_until 20 grep -q '^data: {' "$TMPDIR_T/term"
kill -TERM "$pid"
wait "$spid"
like "$(cat "$TMPDIR_T/term")" 'data: \[DONE\]' "stream in flight finishes after SIGTERM"
ok "process exits after the stream (within 10 s)" wait_until 10 sh -c "! kill -0 $pid"
like "$(cat "$SERVER_LOG" "$SERVER_DIR"/log/*.log 2>/dev/null)" 'signal 15: finishing requests in progress' \
    "shutdown is logged"

done_testing
