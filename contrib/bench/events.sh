#!/bin/bash
# events.sh: how fast a long stream crosses the gateway. An upstream that
# has the whole stream ready (nginx serving a prepared SSE body: it arrives
# in a few large reads, as from a fast provider or a buffered proxy) sends
# EVENTS chunks; the client reads them through lighttpd + the gateway
# (contrib/lighttpd/llmgate.conf), once as an OpenAI pass-through and once
# as an Anthropic stream the gateway translates. Beside it, the same bytes
# the client received, served by that nginx as a static file: the rate a
# web server moves these bytes at. Reports events per second (median of
# RUNS), the gateway's CPU time per event (its processes' user + system
# time over the RUNS transfers) and the ratio. The OpenAI stream runs a
# second time under a policy with every detector on and output = redact
# (the answer checked as it streams): what the guardrails cost an event.
#
#   make bench   (or: contrib/bench/events.sh [EVENTS] [RUNS])
#
# Not a test: the figures depend on the machine. Run it on an idle machine.
set -u
EVENTS=${1:-500}
RUNS=${2:-15}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../t/lib.sh"
. "$here/common.sh"

setup_tmp
B=$TMPDIR_T/events
mkdir -p "$B/static/v1"
chmod -R a+rX "$B"

# The upstream bodies: EVENTS content chunks of a few words each, then usage.
python3 - "$B/static" "$EVENTS" <<'PYEOF'
import json, sys
top, n = sys.argv[1], int(sys.argv[2])
words = "the quick brown fox jumps over the lazy dog "
with open(top + "/openai.sse", "w") as f:
    for i in range(n):
        c = {"id": "chatcmpl-ev", "object": "chat.completion.chunk", "created": 0,
             "model": "ev", "choices": [{"index": 0, "delta": {"content": words},
             "finish_reason": None}]}
        f.write("data: " + json.dumps(c) + "\n\n")
    c = {"id": "chatcmpl-ev", "object": "chat.completion.chunk", "created": 0,
         "model": "ev", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 5, "completion_tokens": 2 * n, "total_tokens": 5 + 2 * n}}
    f.write("data: " + json.dumps(c) + "\n\ndata: [DONE]\n\n")
def ev(name, obj):
    return "event: %s\ndata: %s\n\n" % (name, json.dumps(obj))
with open(top + "/anthropic.sse", "w") as f:
    f.write(ev("message_start", {"type": "message_start", "message": {
        "id": "msg_ev", "type": "message", "role": "assistant", "model": "ev",
        "content": [], "stop_reason": None, "usage": {"input_tokens": 5, "output_tokens": 1}}}))
    f.write(ev("content_block_start", {"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}}))
    for i in range(n):
        f.write(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": words}}))
    f.write(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    f.write(ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 2 * n}}))
    f.write(ev("message_stop", {"type": "message_stop"}))
PYEOF

upstream_nginx "$B/nginx" "	root $B/static;
	default_type text/event-stream;" '		location = /v1/chat/completions { rewrite ^ /openai.sse last; }
		location = /v1/messages { rewrite ^ /anthropic.sse last; }
		# A POST to a static file is 405; answer it with the file (GET).
		location ~ \.sse$ { error_page 405 =200 $uri; }'
wait_until 10 curl -sf -o /dev/null "http://127.0.0.1:$UP_PORT/openai.sse" ||
    bail "upstream nginx did not start"

export LLMGATE_MASTER_KEY=sk-bench-master
CONF=$TMPDIR_T/events.ini
cat >"$CONF" <<EOF2
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY
log_level = warn

[provider up-openai]
type = openai
base_url = http://127.0.0.1:$UP_PORT/v1
api_key = none

[provider up-anthropic]
type = anthropic
base_url = http://127.0.0.1:$UP_PORT/v1
api_key = none

[model ev-openai]
provider = up-openai
input_price = 1.00
output_price = 2.00
rpm = 0

[model ev-anthropic]
provider = up-anthropic
input_price = 1.00
output_price = 2.00
rpm = 0
EOF2
bench_policy_ini "$CONF"

# seconds URL [BODY]: curl's own time_total for the whole transfer; the
# body it received is left in $B/last.
seconds() {
	if [ $# -gt 1 ]; then
		curl -sS -o "$B/last" -w '%{time_total}\n' -H 'Content-Type: application/json' \
		    -H "Authorization: Bearer $LLMGATE_MASTER_KEY" -H "X-Agent: ${AGENT:-}" \
		    --data-binary "$2" "$1"
	else
		curl -sS -o "$B/last" -w '%{time_total}\n' "$1"
	fi
}

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# cpu_ticks: user + system clock ticks of the gateway's processes so far.
cpu_ticks() {
	local p sum=0
	for p in $(gw_worker_pids); do
		read -r -a f <"/proc/$p/stat" 2>/dev/null || continue
		sum=$((sum + f[13] + f[14]))
	done
	echo "$sum"
}

# rate LABEL URL [BODY]: events per second over RUNS transfers (median);
# behind a gateway, also the CPU time its processes spent per event.
rate() {
	local label=$1 i t events c0 cpu=""
	shift
	seconds "$@" >/dev/null || bail "$label: the warm-up transfer failed"
	events=$(grep -c '^data: ' "$B/last")
	[ -z "${SERVER_KIND:-}" ] || c0=$(cpu_ticks)
	for ((i = 0; i < RUNS; i++)); do
		seconds "$@"
	done | median >"$B/$label.t"
	[ -z "${SERVER_KIND:-}" ] ||
	    cpu=$(python3 -c "print('  gateway CPU %.2f us/event' % (($(cpu_ticks) - $c0) * 1e6 / $(getconf CLK_TCK) / ($events * $RUNS)))")
	t=$(cat "$B/$label.t")
	printf '%-26s %5d events %8d bytes  %.4f s  %9.0f events/s%s\n' \
	    "$label" "$events" "$(stat -c %s "$B/last")" "$t" \
	    "$(python3 -c "print($events / max($t, 1e-6))")" "$cpu"
	eval "EVS_${label//-/_}=\$(python3 -c \"print(\$events / max(\$t, 1e-6))\")"
}

echo "$EVENTS-event streams, median of $RUNS, lighttpd + contrib/lighttpd/llmgate.conf, $(nproc) cores"
start_lighttpd "$CONF"
rate gateway-openai "$GW_URL/v1/chat/completions" \
    '{"model":"ev-openai","stream":true,"messages":[{"role":"user","content":"go"}]}'
cp "$B/last" "$B/static/out-openai.sse"
rate gateway-anthropic "$GW_URL/v1/chat/completions" \
    '{"model":"ev-anthropic","stream":true,"messages":[{"role":"user","content":"go"}]}'
cp "$B/last" "$B/static/out-anthropic.sse"
AGENT=guarded rate gateway-openai-policy "$GW_URL/v1/chat/completions" \
    '{"model":"ev-openai","stream":true,"messages":[{"role":"user","content":"go"}]}'
stop_server
chmod a+r "$B/static"/*.sse
rate nginx-openai-bytes "http://127.0.0.1:$UP_PORT/out-openai.sse"
rate nginx-anthropic-bytes "http://127.0.0.1:$UP_PORT/out-anthropic.sse"
python3 -c "print('OpenAI pass-through: %.1f%% of the rate nginx serves the same bytes at' % (100.0 * $EVS_gateway_openai / $EVS_nginx_openai_bytes))"
python3 -c "print('Anthropic translated: %.1f%% of the rate nginx serves the same bytes at' % (100.0 * $EVS_gateway_anthropic / $EVS_nginx_anthropic_bytes))"
python3 -c "print('OpenAI pass-through under a policy with every detector on: %.1f%% of the rate without' % (100.0 * $EVS_gateway_openai_policy / $EVS_gateway_openai))"
done_testing >/dev/null	# lib.sh: a clean end, no TAP plan on the report
