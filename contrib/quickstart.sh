#!/bin/bash
# quickstart.sh: install what is missing, build, and start llmgate behind
# lighttpd on http://127.0.0.1:8080 with the dashboard, the sample config
# and data under ./run/. This is the README's first command:
#
#	sudo contrib/quickstart.sh          # install, build, start
#	contrib/quickstart.sh stop          # stop what it started
#
# Provider keys are read from the environment when set (OPENAI_API_KEY,
# ANTHROPIC_API_KEY, ...; sudo needs -E to pass them). Without any, the
# "demo" model answers from a local mock upstream so that the gateway can
# be tried at once.
#
# Every API route needs a key. The first run creates a client key named
# "demo" in the store and saves its secret in run/demo-key (mode 0600, owned
# by whoever ran the script); later runs reuse it while the store still
# knows it, and make a new one when the store was wiped.
set -eu
cd "$(dirname "$0")/.."
top=$PWD
run=$top/run
PORT=${LLMGATE_PORT:-8080}
DEMO_PORT=${LLMGATE_DEMO_PORT:-18080}

stop() {
	local f
	for f in "$run/lighttpd.pid" "$run/demo-upstream.pid"; do
		[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
	echo "stopped"
}

case "${1:-start}" in
stop)	stop; exit 0;;
start)	;;
*)	echo "usage: $0 [start|stop]" >&2; exit 2;;
esac

t/setup-deps.sh
[ -x configure ] || ./autogen.sh
[ -f Makefile ] || ./configure
make -j"$(nproc)"
stop >/dev/null

mkdir -p "$run/data" "$run/log"
# Who runs the gateway: www-data when started as root and the tree is
# reachable by it (as in production), else the current user.
user=$(id -un) group=$(id -gn)
if [ "$(id -u)" -eq 0 ]; then
	if setpriv --reuid=www-data --regid=www-data --init-groups -- \
	    test -x "$top/src/llmgate" -a -r "$top/conf/llmgate.ini" 2>/dev/null; then
		user=www-data group=www-data
	else
		echo "note: www-data cannot reach $top; the gateway runs as root"
	fi
fi
chown -R "$user:$group" "$run/data" "$run/log"
chmod 2770 "$run/data"

# The sample config with data under ./run and the demo model added.
sed -e "s|^data_dir = .*|data_dir = $run/data|" conf/llmgate.ini >"$run/llmgate.ini"
cat >>"$run/llmgate.ini" <<EOF

; Added by contrib/quickstart.sh: a local mock upstream to try the gateway
; without provider keys (t/mock-upstream.py). Not for production.
[provider demo]
type = openai
base_url = http://127.0.0.1:$DEMO_PORT/v1
api_key = none
residency = local

[model demo]
provider = demo
upstream = demo
input_price = 1.00
output_price = 2.00
EOF
src/llmgate --check-config --config "$run/llmgate.ini"

# llmgate-admin as the gateway's user, so that the store's files stay its.
admin() {
	if [ "$user" = www-data ]; then
		setpriv --reuid=www-data --regid=www-data --init-groups -- \
		    src/llmgate-admin -c "$run/llmgate.ini" "$@"
	else
		src/llmgate-admin -c "$run/llmgate.ini" "$@"
	fi
}
# Berkeley DB recovery before any gateway process opens the store (none
# runs now: stop above ended them); it creates the store on the first run.
admin recover

# The demo client key: reused while the store knows it (looked up by its
# prefix), else created. The secret is shown once; run/demo-key keeps it.
owner=${SUDO_UID:-$(id -u)}:${SUDO_GID:-$(id -g)}
demo_key=
if [ -s "$run/demo-key" ]; then
	demo_key=$(cat "$run/demo-key")
	if ! admin key show "${demo_key:0:10}" 2>/dev/null |
	    grep -qx 'state: active'; then
		echo "note: run/demo-key is not an active key of this store; creating a new one"
		demo_key=
	fi
fi
if [ -z "$demo_key" ]; then
	name=demo
	admin key show "$name" >/dev/null 2>&1 && name=demo-$(date +%s)
	demo_key=$(admin key create --name "$name" --json 2>/dev/null |
	    sed -n 's/^ *"key": *"\(sk-[A-Za-z0-9]*\)".*/\1/p')
	[ -n "$demo_key" ] || { echo "cannot create the demo key" >&2; exit 1; }
	(umask 077; printf '%s\n' "$demo_key" >"$run/demo-key")
	chown "$owner" "$run/demo-key"
fi

nohup python3 t/mock-upstream.py --port "$DEMO_PORT" >"$run/log/demo-upstream.log" 2>&1 &
echo $! >"$run/demo-upstream.pid"

# lighttpd from the shipped contrib config, on loopback, paths into ./run.
sed -e "s|^server.port .*= 80$|server.port = $PORT\nserver.bind = \"127.0.0.1\"|" \
    -e "s|\"/usr/local/share/llmgate/www\"|\"$top/www\"|" \
    -e "s|\"/run/lighttpd.pid\"|\"$run/lighttpd.pid\"|" \
    -e "s|\"/var/log/lighttpd/|\"$run/log/|" \
    -e "s|\"/run/lighttpd/llmgate.sock\"|\"$run/llmgate.sock\"|" \
    -e "s|\"/usr/local/bin/llmgate |\"$top/src/llmgate |" \
    -e "s|\"/etc/llmgate/llmgate.ini\"|\"$run/llmgate.ini\"|" \
    contrib/lighttpd/llmgate.conf >"$run/lighttpd.conf"
if [ "$user" != www-data ]; then
	sed -i -E '/^server\.(user|group)name[[:space:]]*=/d' "$run/lighttpd.conf"
fi
# Pass the provider keys that are set to the gateway explicitly, so that
# the gateway's environment does not depend on how lighttpd was started.
keys=""
for k in OPENAI_API_KEY ANTHROPIC_API_KEY GEMINI_API_KEY DEEPSEEK_API_KEY \
    OPENROUTER_API_KEY GROQ_API_KEY LLMGATE_MASTER_KEY; do
	[ -n "${!k:-}" ] && keys+="\\n\\t\\t\\t\\t\"$k\" => \"${!k}\","
done
sed -i "s|\"LLMGATE_CONFIG\" => \"$run/llmgate.ini\",|&$keys|" "$run/lighttpd.conf"
chmod 0600 "$run/lighttpd.conf"
chown "$user:$group" "$run"
lighttpd -tt -f "$run/lighttpd.conf"
lighttpd -f "$run/lighttpd.conf"

for _ in $(seq 50); do
	curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" && break
	sleep 0.2
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || {
	echo "llmgate did not come up; see $run/log/" >&2
	exit 1
}
cat <<EOF

llmgate is running on http://127.0.0.1:$PORT/ (logs in run/log/)

Demo client key (saved in run/demo-key; every API route needs a key):

  $demo_key

  curl http://127.0.0.1:$PORT/v1/models -H "Authorization: Bearer $demo_key"
  curl http://127.0.0.1:$PORT/v1/chat/completions -H "Authorization: Bearer $demo_key" \\
       -H 'Content-Type: application/json' \\
       -d '{"model":"demo","messages":[{"role":"user","content":"Hello"}]}'
  curl http://127.0.0.1:$PORT/usage -H "Authorization: Bearer $demo_key"

Dashboard: http://127.0.0.1:$PORT/ needs the key too: paste it into the key
field. More keys: src/llmgate-admin -c run/llmgate.ini key create --name NAME
(as $user).
Stop it with: contrib/quickstart.sh stop
EOF
