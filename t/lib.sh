# lib.sh: shared library of the integration tests t/tNNNN-*.sh (bash).
#
# A test sources it, then uses TAP helpers, a private temporary directory,
# the mock upstream and private web servers on loopback ports:
#
#	. "$(dirname "$0")/lib.sh"
#	setup_tmp			# $TMPDIR_T, removed at exit
#	start_mock			# $MOCK_URL
#	write_basic_config "$TMPDIR_T/llmgate.ini"
#	scenarios() { is "$(curl -s -o /dev/null -w '%{http_code}' \
#	    "$GW_URL/health")" 200 "$SERVER_KIND: /health"; }
#	for_each_server "$TMPDIR_T/llmgate.ini" scenarios
#	done_testing
#
# TAP:        plan N | done_testing, ok NAME CMD..., pass NAME, fail NAME,
#             is GOT EXPECTED NAME, isnt GOT UNEXPECTED NAME,
#             like GOT ERE NAME, unlike GOT ERE NAME, diag TEXT..., bail REASON
# Places:     top_srcdir, top_builddir, LLMGATE, MOCK, TEST_NAME, TMPDIR_T
# Processes:  setup_tmp, free_port, start_mock [ARGS...], wait_until SECS CMD...,
#             start_lighttpd INI, start_apache INI, start_nginx INI,
#             start_cgi INI, stop_server, restart_gateway (nginx, after a kill),
#             for_each_server INI FUNC [ARGS...], on_first_server,
#             at_exit CMD..., as_gw_user CMD...
# HTTP:       gw_curl CURL-ARGS...
# Streams:    gw_sse ARGS... URL, stream_timing OUT [ERE],
#             ok_streamed NAME OUT MIN-SPREAD [ERE] (t/sse-client.py)
# SDK:        setup_sdk (sets $SDK: the openai npm client and t/sdk scripts)
# Config:     write_basic_config FILE
#
# The servers are built from the shipped files under contrib/ (never from
# private copies), with only machine-specific values replaced: ports, paths
# into $TMPDIR_T, the binary under test, and the environment. Each
# replacement must match the shipped file, so a change there that the harness
# does not follow stops the test with a clear message.
#
# Users: as root (the CI), every server runs the gateway as www-data, as the
# shipped configs do. So everything the gateway reads must be readable by
# www-data (the source tree, $LLMGATE, $TMPDIR_T are checked), and its data
# directory $TMPDIR_T/data is owned by www-data (mode 2770). Run tools that
# touch the data directory with `as_gw_user` so that the files they create stay
# usable by the gateway. As any other user, the servers run as that user and
# the user-switching lines of the contrib files are dropped.
#
# The TAP helpers and start_* must run in the test's own shell, not in a
# pipeline or $(...): a subshell would lose the test counter and the processes.
#
# Environment knobs: KEEP_TMP=1 keeps $TMPDIR_T; TAP_TIMES=1 prints the
# seconds since the previous result after each one; LLMGATE_SERVERS="apache cgi"
# limits for_each_server; GW_PASSENV="NAME..." passes more variables to the
# gateway (MOCK_API_KEY, LLMGATE_MASTER_KEY and the sanitizer *_OPTIONS are
# always passed when set); LLMGATE and MOCK override the programs under test.

set -u
umask 022

# Debian's interpreters first (python3 above all: the suite makes some 11000
# calls), as on a fresh machine: a version manager's shims ahead of them in
# PATH cost each call dearly (pyenv's: 80 ms, 170 s of CPU in all).
PATH=/usr/bin:/bin:$PATH

# --- Places ------------------------------------------------------------------

_lib_t=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=$(cd "${top_srcdir:-$_lib_t/..}" && pwd)
top_builddir=$(cd "${top_builddir:-$_lib_t/..}" && pwd)
LLMGATE=${LLMGATE:-$top_builddir/src/llmgate}
MOCK=${MOCK:-$top_srcdir/t/mock-upstream.py}
TEST_NAME=$(basename "$0" .sh)
export top_srcdir top_builddir LLMGATE MOCK

# PATH of the servers' clean environment (systemd's default).
_lib_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The user the gateway runs as under the servers.
if [ "$(id -u)" -eq 0 ]; then
	GW_USER=www-data GW_GROUP=www-data
else
	GW_USER=$(id -un) GW_GROUP=$(id -gn)
fi

# --- TAP ---------------------------------------------------------------------

_tap_n=0		# tests run
_tap_failed=0		# tests failed
_tap_plan=		# plan announced by `plan`
_tap_done=0		# done_testing was called
_tap_bailed=0

plan() {		# N: announce the number of tests up front
	_tap_plan=$1
	echo "1..$1"
}

done_testing() {	# announce the plan at the end: the tests that ran
	_tap_done=1
	echo "1..$_tap_n"
}

# _tap_result STATUS NAME: print one result line. '#' is escaped so that a
# name is never read as a SKIP/TODO directive.
_tap_result() {
	local name=${2//$'\n'/ }
	name=${name//#/\\#}
	_tap_n=$((_tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $_tap_n - $name"
	else
		_tap_failed=$((_tap_failed + 1))
		echo "not ok $_tap_n - $name"
	fi
	if [ -n "${TAP_TIMES:-}" ]; then	# where a test spends its time
		echo "# +$(_lib_secs "$_tap_last") s"
		_tap_last=$(_now_usec)
	fi
	return "$1"
}

diag() {		# TEXT...: each argument, each line of it, as a TAP comment
	local line
	printf '%s\n' "$@" | while IFS= read -r line; do
		echo "# $line"
	done
}

pass() { _tap_result 0 "$1"; }

fail() { _tap_result 1 "$1"; shift; [ $# -eq 0 ] || diag "$@"; return 1; }

ok() {			# NAME CMD [ARGS...]: passes if CMD exits 0
	local name=$1 rc
	shift
	"$@" >&2	# stdout of CMD must not be mistaken for TAP
	rc=$?
	_tap_result $((rc != 0)) "$name" ||
	    diag "  command failed (exit $rc): $*"
	return $((rc != 0))
}

is() {			# GOT EXPECTED NAME
	if [ "$1" = "$2" ]; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "       got: '$1'" "  expected: '$2'"
		return 1
	fi
}

isnt() {		# GOT UNEXPECTED NAME
	if [ "$1" != "$2" ]; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "       got: '$1'" "  expected anything else"
		return 1
	fi
}

like() {		# GOT ERE NAME (bash [[ =~ ]], extended regex)
	if [[ $1 =~ $2 ]]; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "       got: '$1'" "  expected to match: $2"
		return 1
	fi
}

unlike() {		# GOT ERE NAME
	if ! [[ $1 =~ $2 ]]; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "       got: '$1'" "  expected not to match: $2"
		return 1
	fi
}

bail() {		# REASON: stop the whole test run of this script
	_tap_bailed=1
	echo "Bail out! $*"
	exit 255
}

# --- Exit and cleanup --------------------------------------------------------

_lib_at_exit=()		# commands registered with at_exit
_lib_logs=()		# logs shown when something failed
_proc_pids=()		# process group leaders started by _spawn

at_exit() {		# CMD...: run at exit, before the servers stop (use
	_lib_at_exit+=("$*")	# this instead of your own EXIT trap)
}

_lib_exit() {
	local rc=$? f i
	trap - EXIT
	for ((i = ${#_lib_at_exit[@]} - 1; i >= 0; i--)); do
		eval "${_lib_at_exit[i]}"
	done
	_stop_all
	diag "$TEST_NAME: $(_lib_secs "$_lib_t0") s"
	if [ -n "$_tap_plan" ] && [ "$_tap_plan" != "$_tap_n" ]; then
		diag "planned $_tap_plan tests but ran $_tap_n"
		_tap_failed=$((_tap_failed + 1))
	elif [ -z "$_tap_plan" ] && [ "$_tap_done" -eq 0 ] &&
	    [ "$_tap_bailed" -eq 0 ]; then
		diag "the test ended (exit $rc) before done_testing, after $_tap_n tests"
		_tap_failed=$((_tap_failed + 1))
	fi
	if [ "$_tap_failed" -gt 0 ] || [ "$_tap_bailed" -eq 1 ]; then
		for f in "${_lib_logs[@]}"; do
			[ -s "$f" ] || continue
			diag "----- $f (last 80 lines) -----"
			diag "$(tail -n 80 "$f")"
		done
	fi
	if [ -n "${TMPDIR_T:-}" ] && [ -d "$TMPDIR_T" ]; then
		if [ "${KEEP_TMP:-0}" = 1 ]; then
			diag "kept $TMPDIR_T"
		else
			[ "$_tap_failed" -eq 0 ] || diag "KEEP_TMP=1 keeps the work directory for a look"
			rm -rf "$TMPDIR_T"
		fi
	fi
	[ "$_tap_bailed" -eq 1 ] && exit 255
	[ "$rc" -eq 0 ] || exit "$rc"		# e.g. 143 after SIGTERM
	[ "$_tap_failed" -eq 0 ] || exit 1
	exit 0
}
_lib_t0=${EPOCHREALTIME//[!0-9]/}
_tap_last=$_lib_t0
trap _lib_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Processes ---------------------------------------------------------------

# _spawn LOG CMD [ARGS...]: start CMD in the background as the leader of a
# new session (so its process group is its pid and everything it forks can be
# stopped together), output to LOG. Sets _spawned to the pid.
_spawn() {
	local log=$1
	shift
	setsid "$@" </dev/null >>"$log" 2>&1 &
	_spawned=$!
	_proc_pids+=("$_spawned")
}

# _descendants PID: every process below PID (children, grandchildren...).
_descendants() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
	    { parent[$1] = $2 }
	    END {
		for (p in parent) {
			q = p
			while (q in parent && q != root && q > 1)
				q = parent[q]
			if (q == root && p != root)
				print p
		}
	    }'
}

# _alive PID: true while PID runs (a zombie does not count).
_alive() {
	local st
	st=$(ps -o stat= -p "$1") && [[ $st != Z* ]]
}

# _group_alive PGID: true while a live (non-zombie) process is in the group.
_group_alive() {
	ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}

# _stop_proc PID: SIGTERM to the process group and every descendant (some
# servers put their children in other groups), up to 5 s to go, then SIGKILL.
_stop_proc() {
	local pid=$1 kids i
	kids=$(_descendants "$pid")
	kill -TERM -- "-$pid" $kids 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		_group_alive "$pid" || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" $kids 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

_stop_all() {
	local i
	for ((i = ${#_proc_pids[@]} - 1; i >= 0; i--)); do
		_stop_proc "${_proc_pids[i]}"
	done
	_proc_pids=()
}

# _usec SECONDS: "1.5" -> 1500000 (microseconds, integer arithmetic only).
_usec() {
	local s=$1 int frac
	int=${s%%.*} frac=
	[ "$int" = "$s" ] || frac=${s#*.}
	frac=${frac}000000
	echo $(( 10#${int:-0} * 1000000 + 10#${frac:0:6} ))
}

_now_usec() { echo "${EPOCHREALTIME//[!0-9]/}"; }
_lib_secs() {		# T0: seconds since _now_usec printed T0, e.g. 1.25
	local d=$(( $(_now_usec) - $1 ))
	printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}

# wait_until SECONDS CMD [ARGS...]: poll CMD every 0.1 s; 0 once it
# succeeds, 1 when SECONDS have passed. The arguments are expanded once,
# before the first poll: `wait_until 9 test "$(f)" -gt 0` tests one value
# for 9 s. Poll a function, or eval a single-quoted condition:
# `wait_until 9 eval '[ "$(f)" -gt 0 ]'`.
wait_until() {
	local deadline
	deadline=$(( $(_now_usec) + $(_usec "$1") ))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(_now_usec)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

free_port() {		# print a free TCP port on 127.0.0.1
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

as_gw_user() {		# CMD [ARGS...]: run as the user the servers run the gateway as
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid="$GW_USER" --regid="$GW_GROUP" --init-groups -- "$@"
	else
		"$@"
	fi
}

# --- Work directory ------------------------------------------------------------

# setup_tmp: create $TMPDIR_T = $top_builddir/t/tmp/<test>.XXXX (0755, so that
# www-data can read configs in it) with data/ for the gateway's data_dir
# (owned by the gateway user, 2770). Removed at exit unless KEEP_TMP=1.
setup_tmp() {
	local base=$top_builddir/t/tmp
	# A tree the gateway user cannot traverse (a clone under /root, say):
	# work under /var/tmp with copies of the binary and the dashboard.
	if [ "$(id -u)" -eq 0 ] && ! as_gw_user test -x "$top_builddir/t"; then
		base=/var/tmp/llmgate-tests
		_lib_copied=1
	fi
	mkdir -p "$base" || bail "cannot create $base"
	TMPDIR_T=$(mktemp -d "$base/$TEST_NAME.XXXX") || bail "mktemp failed"
	chmod 0755 "$TMPDIR_T"
	mkdir "$TMPDIR_T/data"
	if [ "$(id -u)" -eq 0 ]; then
		chown "$GW_USER:$GW_GROUP" "$TMPDIR_T/data"
		chmod 2770 "$TMPDIR_T/data"
	fi
	if [ -n "${_lib_copied:-}" ]; then
		diag "$GW_USER cannot reach $top_builddir: using copies in $TMPDIR_T"
		mkdir -p "$TMPDIR_T/bin" && cp -p "$LLMGATE" "$TMPDIR_T/bin/llmgate" ||
		    bail "cannot copy $LLMGATE"
		LLMGATE=$TMPDIR_T/bin/llmgate
		cp -r "$top_srcdir/www" "$TMPDIR_T/www" 2>/dev/null
		chmod -R a+rX "$TMPDIR_T/bin" "$TMPDIR_T/www" 2>/dev/null
		export LLMGATE
	fi
	export TMPDIR_T
}

_need_tmp() {
	[ -n "${TMPDIR_T:-}" ] && [ -d "$TMPDIR_T" ] || bail "call setup_tmp first"
}

# --- Mock upstream -------------------------------------------------------------

start_mock() {		# [ARGS...]: start t/mock-upstream.py; sets MOCK_PORT, MOCK_URL
	local pf
	_need_tmp
	pf=$(mktemp -u "$TMPDIR_T/mock.XXXX")
	_spawn "$pf.log" python3 "$MOCK" --port 0 --port-file "$pf.port" "$@"
	_lib_logs+=("$pf.log")
	wait_until 15 test -s "$pf.port" || bail "mock upstream did not start: $(tail -n 5 "$pf.log")"
	MOCK_PORT=$(cat "$pf.port")
	MOCK_URL=http://127.0.0.1:$MOCK_PORT
	export MOCK_PORT MOCK_URL
}

write_basic_config() {	# FILE: the minimal config: one mock provider, model mock-ok
	[ -n "${MOCK_URL:-}" ] || bail "write_basic_config needs start_mock first"
	cat >"$1" <<EOF
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY
max_body = 65536

[retry]
attempts = 2
backoff_ms = 50

[provider mock]
type = openai
base_url = $MOCK_URL/v1
api_key = env:MOCK_API_KEY
match = mock*

[model mock-ok]
provider = mock
upstream = mock
input_price = 1.00
output_price = 2.00
EOF
}

# --- Rendering the contrib files -----------------------------------------------

# _render SRC DST [REGEX REPLACEMENT]...: copy SRC to DST, replacing every
# match of each Python REGEX (multi-line mode) by the literal REPLACEMENT.
# A REGEX that matches nothing stops the test: the contrib file changed.
_render() {
	python3 - "$@" <<'EOF' || bail "cannot render $2 from $1"
import re, sys
src, dst, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(src).read()
for pat, rep in zip(pairs[0::2], pairs[1::2]):
    text, n = re.subn(pat, lambda m: rep, text, flags=re.M)
    if n == 0:
        sys.exit("t/lib.sh: %s no longer matches /%s/; update t/lib.sh" % (src, pat))
open(dst, "w").write(text)
EOF
}

# _gw_env: set GW_ENV to the NAME=VALUE pairs of the gateway's
# environment besides LLMGATE_CONFIG=INI: the test keys, sanitizer options
# and the names in $GW_PASSENV, each when set.
_gw_env() {
	local n v
	GW_ENV=()
	for n in MOCK_API_KEY LLMGATE_MASTER_KEY ASAN_OPTIONS UBSAN_OPTIONS \
	    LSAN_OPTIONS ${GW_PASSENV:-}; do
		[ -n "${!n+set}" ] || continue
		v=${!n}
		case $v in
		*[\"\\$'\n']*) bail "\$$n contains a quote, backslash or newline;" \
		    "it cannot go into a server config" ;;
		esac
		GW_ENV+=("$n=$v")
	done
}

# _start_common KIND: checks and locations shared by the start_* functions.
_start_common() {
	_need_tmp
	[ -z "${SERVER_KIND:-}" ] || stop_server
	[ -x "$LLMGATE" ] || bail "$LLMGATE is missing: build it first (make)"
	case $LLMGATE in *[[:space:]]*) bail "the path of \$LLMGATE contains a space" ;; esac
	if [ "$(id -u)" -eq 0 ] &&
	    ! as_gw_user test -x "$LLMGATE" -a -r "$TMPDIR_T" -a -x "$TMPDIR_T"; then
		bail "$GW_USER cannot reach $LLMGATE or $TMPDIR_T:" \
		    "every directory above them needs o+x (the servers run the gateway as $GW_USER)"
	fi
	SERVER_DIR=$TMPDIR_T/$1
	mkdir -p "$SERVER_DIR/run"
	WWW_DIR=$top_srcdir/www
	[ -z "${_lib_copied:-}" ] || WWW_DIR=$TMPDIR_T/www
	if [ ! -f "$WWW_DIR/index.html" ]; then
		WWW_DIR=$TMPDIR_T/www
		mkdir -p "$WWW_DIR"
		echo '<!doctype html><title>llmgate</title>' >"$WWW_DIR/index.html"
	fi
	GW_PORT=$(free_port)
	_server_pids=()
}

# _wait_health KIND: wait for GET /health = 200, then export the results.
_wait_health() {
	local kind=$1 code="" pid dead="" deadline
	GW_URL=http://127.0.0.1:$GW_PORT
	deadline=$(( $(_now_usec) + 30000000 ))
	while [ "$(_now_usec)" -lt "$deadline" ]; do
		for pid in "${_server_pids[@]}"; do
			_alive "$pid" || dead+=" $pid"
		done
		[ -z "$dead" ] || break
		code=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$GW_URL/health")
		[ "$code" != 200 ] || break
		sleep 0.1
	done
	if [ "$code" != 200 ]; then
		[ -z "$dead" ] || diag "$kind: process(es)$dead exited"
		diag "$kind: GET $GW_URL/health answered '${code:-nothing}'"
		bail "$kind did not come up (logs above)"
	fi
	SERVER_KIND=$kind
	export GW_URL SERVER_KIND SERVER_LOG
}

# stop_server: stop the server started last (and the gateway under it).
stop_server() {
	local pid i
	for pid in "${_server_pids[@]}"; do
		_stop_proc "$pid"
		for ((i = 0; i < ${#_proc_pids[@]}; i++)); do
			[ "${_proc_pids[i]}" != "$pid" ] || unset '_proc_pids[i]'
		done
		_proc_pids=("${_proc_pids[@]}")
	done
	_server_pids=()
	unset SERVER_KIND GW_URL
}

# for_each_server INI FUNC [ARGS...]: for each of lighttpd, apache (mod_fcgid),
# nginx (+ spawn-fcgi) and cgi (Apache mod_cgid) in turn: start it with INI,
# run FUNC ARGS... ($SERVER_KIND, $GW_URL and $SERVER_LOG are set), stop it.
for_each_server() {
	local ini=$1 func=$2 kind
	shift 2
	local t0
	_lib_first_server=
	for kind in ${LLMGATE_SERVERS:-lighttpd apache nginx cgi}; do
		: "${_lib_first_server:=$kind}"
		diag "=== $kind ==="
		t0=$(_now_usec)
		"start_$kind" "$ini"
		"$func" "$@"
		stop_server
		diag "=== $kind: $(_lib_secs "$t0") s"
	done
}

# on_first_server: true under the first front end of for_each_server only.
# For the checks of a scenario that do not depend on the web server (the
# call loop's retries and timeouts, translation, the store) and cost
# seconds: they run once, the rest of the scenario under every server.
on_first_server() {
	[ "${SERVER_KIND:-}" = "${_lib_first_server:-}" ]
}

# --- lighttpd: contrib/lighttpd/llmgate.conf -----------------------------------

# start_lighttpd INI: lighttpd spawning the gateway itself (bin-path).
# SERVER_LOG is lighttpd's own stderr, which the gateway inherits (the journal
# under systemd); lighttpd's server.errorlog is $SERVER_DIR/log/error.log.
start_lighttpd() {
	local ini=$1 d extra="" kv
	_start_common lighttpd
	d=$SERVER_DIR
	_gw_env
	for kv in "${GW_ENV[@]}"; do
		extra+=$'\n\t\t\t\t'"\"${kv%%=*}\" => \"${kv#*=}\","
	done
	_render "$top_srcdir/contrib/lighttpd/llmgate.conf" "$d/lighttpd.conf" \
	    '^server\.port\s*=\s*80$' "server.port = $GW_PORT"$'\n'"server.bind = \"127.0.0.1\"" \
	    '"/usr/local/share/llmgate/www"' "\"$WWW_DIR\"" \
	    '"/run/lighttpd\.pid"' "\"$d/lighttpd.pid\"" \
	    '"/var/log/lighttpd/llmgate-error\.log"' "\"$d/log/error.log\"" \
	    '"/var/log/lighttpd/llmgate-access\.log"' "\"$d/log/access.log\"" \
	    '"/run/lighttpd/llmgate\.sock"' "\"$d/run/llmgate.sock\"" \
	    '"/usr/local/bin/llmgate ' "\"$LLMGATE " \
	    '"LLMGATE_CONFIG" => "/etc/llmgate/llmgate\.ini",' "\"LLMGATE_CONFIG\" => \"$ini\",$extra"
	mkdir -p "$d/log"
	if [ "$(id -u)" -eq 0 ]; then
		# lighttpd opens its logs and creates the gateway's socket after
		# the switch to www-data (Debian: /var/log/lighttpd, /run/lighttpd).
		chown "$GW_USER:$GW_GROUP" "$d/run" "$d/log"
	else
		sed -i -E '/^server\.(user|group)name[[:space:]]*=/d' "$d/lighttpd.conf"
	fi
	SERVER_LOG=$d/lighttpd.out
	_lib_logs+=("$d/log/error.log" "$d/lighttpd.out")
	lighttpd -tt -f "$d/lighttpd.conf" >"$d/lighttpd.out" 2>&1 ||
	    bail "lighttpd rejects $d/lighttpd.conf: $(cat "$d/lighttpd.out")"
	# A clean environment as under systemd: lighttpd hands its own to the
	# gateway, and the test's must not stand in for bin-environment.
	_spawn "$d/lighttpd.out" env -i "PATH=$_lib_path" lighttpd -D -f "$d/lighttpd.conf"
	_server_pids+=("$_spawned")
	_wait_health lighttpd
}

# --- Apache: contrib/apache/llmgate-fcgid.conf and llmgate-cgi.conf --------------

# _apache_main KIND MODULE: a minimal private main config around the rendered
# vhost $SERVER_DIR/llmgate.conf; as root, children (and so the gateway) run as
# www-data. Debian's own defaults that matter are reproduced (<Directory />
# denied, the combined log format).
_apache_main() {
	local d=$SERVER_DIR mods=/usr/lib/apache2/modules m
	{
		echo "# Generated by t/lib.sh for $TEST_NAME; the site is $d/llmgate.conf."
		echo "ServerRoot \"$d\""
		echo "ServerName 127.0.0.1"
		echo "Listen 127.0.0.1:$GW_PORT"
		echo "PidFile \"$d/apache2.pid\""
		echo "DefaultRuntimeDir \"$d/run\""
		echo "ErrorLog \"$d/error.log\""
		echo "LogLevel warn"
		echo "Timeout 300"
		for m in mpm_event authz_core mime dir alias env setenvif rewrite headers "$2"; do
			echo "LoadModule ${m}_module $mods/mod_$m.so"
		done
		if [ "$(id -u)" -eq 0 ]; then
			echo "User $GW_USER"
			echo "Group $GW_GROUP"
		fi
		echo "TypesConfig /etc/mime.types"
		echo 'LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" combined'
		echo "<Directory />"
		echo "    AllowOverride None"
		echo "    Require all denied"
		echo "</Directory>"
		case $2 in
		fcgid)	echo "FcgidIPCDir \"$d/run/fcgid\""
			echo "FcgidProcessTableFile \"$d/run/fcgid_shm\"" ;;
		cgid)	echo "ScriptSock \"$d/run/cgid.sock\"" ;;
		esac
		echo "Include \"$d/llmgate.conf\""
	} >"$d/apache2.conf"
}

# _apache_run KIND: check and start the private Apache in the foreground.
_apache_run() {
	local d=$SERVER_DIR envvars
	# A clean environment as under systemd, plus what Debian's apache2
	# otherwise gets from /etc/apache2/envvars.
	envvars=(-i "PATH=$_lib_path" LANG=C
	    APACHE_RUN_USER="$GW_USER" APACHE_RUN_GROUP="$GW_GROUP"
	    APACHE_PID_FILE="$d/apache2.pid" APACHE_RUN_DIR="$d/run"
	    APACHE_LOCK_DIR="$d/run" APACHE_LOG_DIR="$d")
	SERVER_LOG=$d/error.log
	_lib_logs+=("$d/error.log" "$d/apache2.out")
	env "${envvars[@]}" apache2 -f "$d/apache2.conf" -t >"$d/apache2.out" 2>&1 ||
	    bail "apache2 rejects $d/apache2.conf: $(cat "$d/apache2.out")"
	_spawn "$d/apache2.out" env "${envvars[@]}" apache2 -f "$d/apache2.conf" -DFOREGROUND
	_server_pids+=("$_spawned")
	_wait_health "$1"
}

# _apache_vhost_args: set VHOST_ARGS to the _render pairs both vhosts share:
# address, static root, binary, logs.
_apache_vhost_args() {
	local dir base
	dir=$(dirname "$LLMGATE") base=$(basename "$LLMGATE")
	VHOST_ARGS=(
	    '<VirtualHost \*:80>' "<VirtualHost 127.0.0.1:$GW_PORT>"
	    '"/usr/local/share/llmgate/www"' "\"$WWW_DIR\""
	    '"/usr/local/bin/llmgate"' "\"$LLMGATE\""
	    '<Directory "/usr/local/bin">' "<Directory \"$dir\">"
	    '<Files "llmgate">' "<Files \"$base\">"
	    '"/var/log/llmgate/apache-error\.log"' "\"$SERVER_DIR/error.log\""
	    '"/var/log/llmgate/apache-access\.log"' "\"$SERVER_DIR/access.log\""
	)
}

# start_apache INI: Apache + mod_fcgid (contrib/apache/llmgate-fcgid.conf).
# SERVER_LOG is the main error log, where mod_fcgid puts the gateway's stderr.
start_apache() {
	local ini=$1 extra="" kv
	_start_common apache
	_gw_env
	for kv in "${GW_ENV[@]}"; do
		extra+=$'\n    '"FcgidInitialEnv ${kv%%=*} \"${kv#*=}\""
	done
	_apache_vhost_args
	_render "$top_srcdir/contrib/apache/llmgate-fcgid.conf" "$SERVER_DIR/llmgate.conf" \
	    "${VHOST_ARGS[@]}" \
	    '^(\s*)FcgidInitialEnv LLMGATE_CONFIG /etc/llmgate/llmgate\.ini$' \
	    "    FcgidInitialEnv LLMGATE_CONFIG \"$ini\"$extra"
	_apache_main apache fcgid
	_apache_run apache
}

# start_cgi INI: Apache + mod_cgid running the gateway as a plain CGI program
# (contrib/apache/llmgate-cgi.conf). SERVER_LOG receives the CGI's stderr.
start_cgi() {
	local ini=$1 extra="" kv
	_start_common cgi
	_gw_env
	for kv in "${GW_ENV[@]}"; do
		extra+=$'\n            '"SetEnv ${kv%%=*} \"${kv#*=}\""
	done
	_apache_vhost_args
	_render "$top_srcdir/contrib/apache/llmgate-cgi.conf" "$SERVER_DIR/llmgate.conf" \
	    "${VHOST_ARGS[@]}" \
	    '^\s*SetEnv LLMGATE_CONFIG /etc/llmgate/llmgate\.ini$' \
	    "            SetEnv LLMGATE_CONFIG \"$ini\"$extra"
	_apache_main cgi cgid
	_apache_run cgi
}

# --- nginx + spawn-fcgi: contrib/nginx/llmgate.conf and ---------------------------
# --- contrib/systemd/llmgate-spawn-fcgi.service --------------------------------

# start_nginx INI: spawn-fcgi run the way the systemd unit runs it (its
# ExecStart, Environment= and UMask=, a clean environment, the socket moved
# into $TMPDIR_T), then a private nginx with the shipped server block.
# SERVER_LOG is the gateway's stderr (the journal under systemd).
start_nginx() {
	local ini=$1 d unit cmd umask_v env kv name
	_start_common nginx
	d=$SERVER_DIR
	unit=$top_srcdir/contrib/systemd/llmgate-spawn-fcgi.service

	# ExecStart= (continuation lines joined), with the socket and binary.
	_render "$unit" "$d/unit.service" \
	    '/run/llmgate/llmgate\.sock' "$d/run/llmgate.sock" \
	    '/usr/local/bin/llmgate( |$)' "$LLMGATE " \
	    '^Environment=LLMGATE_CONFIG=/etc/llmgate/llmgate\.ini$' "Environment=LLMGATE_CONFIG=$ini"
	cmd=$(sed -n -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' -e 's/^ExecStart=//p' "$d/unit.service")
	[ -n "$cmd" ] || bail "$unit has no ExecStart="
	umask_v=$(sed -n 's/^UMask=//p' "$d/unit.service")
	[ "$(id -u)" -eq 0 ] ||		# only root can switch users
	    cmd=$(echo "$cmd" | sed -E 's/ -[UGug] [^ ]+//g')
	# systemd starts the service with a clean environment plus Environment=
	# lines; the test's keys stand in for EnvironmentFile=.
	env=("PATH=$_lib_path")
	while IFS= read -r kv; do
		env+=("$kv")
	done < <(sed -n 's/^Environment=//p' "$d/unit.service")
	_gw_env
	env+=("${GW_ENV[@]}")
	SERVER_LOG=$d/gateway.log
	_lib_logs+=("$d/gateway.log" "$d/error.log" "$d/nginx.out")
	rm -f "$d/run/llmgate.sock"
	# shellcheck disable=SC2206  # ExecStart is split into words as systemd does
	_nginx_gw=(bash -c 'umask "$1"; shift; exec env -i "$@"' umask "${umask_v:-0022}" "${env[@]}" $cmd)
	_nginx_ini=$ini
	_spawn "$d/gateway.log" "${_nginx_gw[@]}"
	_server_pids+=("$_spawned")
	wait_until 10 test -S "$d/run/llmgate.sock" ||
	    bail "spawn-fcgi did not create its socket: $(tail -n 5 "$d/gateway.log")"

	# nginx: a private main config including the shipped server block.
	_render "$top_srcdir/contrib/nginx/llmgate.conf" "$d/llmgate.conf" \
	    '^(\s*)listen 80;$' "	listen 127.0.0.1:$GW_PORT;" \
	    '/usr/local/share/llmgate/www;' "$WWW_DIR;" \
	    '/var/log/llmgate/nginx-access\.log;' "$d/access.log;" \
	    '/var/log/llmgate/nginx-error\.log;' "$d/error.log;" \
	    'unix:/run/llmgate/llmgate\.sock;' "unix:$d/run/llmgate.sock;"
	ln -sf /etc/nginx/fastcgi_params /etc/nginx/mime.types "$d/"
	mkdir -p "$d/tmp"
	{
		echo "# Generated by t/lib.sh for $TEST_NAME; the site is $d/llmgate.conf."
		echo "daemon off;"
		echo "worker_processes 1;"
		echo "pid $d/nginx.pid;"
		echo "error_log $d/error.log warn;"
		[ "$(id -u)" -ne 0 ] || echo "user $GW_USER $GW_GROUP;"
		echo "events { worker_connections 256; }"
		echo "http {"
		echo "    include mime.types;"
		echo "    default_type application/octet-stream;"
		for name in client_body fastcgi proxy uwsgi scgi; do
			echo "    ${name}_temp_path $d/tmp/$name;"
		done
		echo "    include $d/llmgate.conf;"
		echo "}"
	} >"$d/nginx.conf"
	nginx -t -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" >"$d/nginx.out" 2>&1 ||
	    bail "nginx rejects $d/nginx.conf: $(cat "$d/nginx.out")"
	_spawn "$d/nginx.out" nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log"
	_server_pids+=("$_spawned")
	_wait_health nginx
}

# restart_gateway: under nginx, start the gateway again after it died, as
# systemd's Restart=always does with the shipped unit (ExecStartPre's
# recovery, then ExecStart). Other front ends restart it themselves.
restart_gateway() {
	[ "${SERVER_KIND:-}" = nginx ] || return 0
	ADMIN_CONF=$_nginx_ini admin recover >/dev/null ||
	    bail "llmgate-admin recover failed before the restart"
	rm -f "$SERVER_DIR/run/llmgate.sock"
	_spawn "$SERVER_DIR/gateway.log" "${_nginx_gw[@]}"
	_server_pids+=("$_spawned")
	wait_until 10 test -S "$SERVER_DIR/run/llmgate.sock" ||
	    bail "spawn-fcgi did not come back: $(tail -n 5 "$SERVER_DIR/gateway.log")"
}

# --- HTTP --------------------------------------------------------------------

# gw_curl CURL-ARGS...: curl -sS --max-time 30 with the master key as bearer
# token when $LLMGATE_MASTER_KEY is set and the arguments carry no
# Authorization header of their own. Later --max-time arguments win.
# setup_sdk: the official openai npm client for the tests' scripts in
# t/sdk/. $SDK is t/sdk when t/setup-deps.sh installed it there, else a
# build-tree copy (make distcheck) with the scripts refreshed and the client
# installed on first use.
setup_sdk() {
	SDK=$top_srcdir/t/sdk
	[ -d "$SDK/node_modules/openai" ] &&
	    [ -d "$SDK/node_modules/@anthropic-ai/sdk" ] &&
	    [ -d "$SDK/node_modules/puppeteer-core" ] && return 0
	SDK=$top_builddir/t/sdk-build
	mkdir -p "$SDK"
	cp "$top_srcdir"/t/sdk/*.json "$top_srcdir"/t/sdk/*.mjs "$SDK/" ||
	    bail "cannot copy t/sdk to $SDK"
	{ [ -d "$SDK/node_modules/openai" ] &&
	    [ -d "$SDK/node_modules/@anthropic-ai/sdk" ] &&
	    [ -d "$SDK/node_modules/puppeteer-core" ]; } ||
	    (cd "$SDK" && npm install --no-package-lock --no-audit --no-fund \
	    --loglevel=error >&2) ||
	    bail "npm install in $SDK (openai, @anthropic-ai/sdk, puppeteer-core) failed"
}

# _master_key_wanted ARGS...: a master key is set and ARGS send no
# Authorization header of their own (gw_curl, gw_sse add it then).
_master_key_wanted() {
	local a
	for a; do
		case ${a,,} in authorization:*) return 1 ;; esac
	done
	[ -n "${LLMGATE_MASTER_KEY:-}" ]
}

gw_curl() {
	! _master_key_wanted "$@" ||
	    set -- -H "Authorization: Bearer $LLMGATE_MASTER_KEY" "$@"
	curl -sS --max-time 30 "$@"
}

# --- Streams timed where they are read -------------------------------------------
#
# gw_sse [-H HEADER]... [-d BODY|@FILE] [-D FILE] [-m SECS] [--leave-after N] URL
#     t/sse-client.py (see there) with the master key as gw_curl sends it:
#     prints "<time> <line>" per non-empty line of the answer, <time> being
#     the wall clock (the clock of the mock's log) when the line came off the
#     socket in the process that reads it. --leave-after N hangs up after N
#     "data:" lines (a client leaving mid-stream, at a known point).
# stream_timing OUT [ERE]
#     prints "N SPREAD LEAD" for the lines of gw_sse output OUT matching ERE
#     (default: content events '"content":"tok'): N of them, SPREAD seconds
#     between the first and the last as they arrived, LEAD seconds by which
#     the first arrived before the mock wrote the last event of its most
#     recent stream (its log's "sent" times; negative: after it).
# ok_streamed NAME OUT MIN-SPREAD [ERE]
#     two tests: LEAD > 0 (the first event reached the client before the
#     upstream had finished: nothing on the way held the answer back; this
#     depends on no margin), and SPREAD >= MIN-SPREAD (choose it well below
#     the mock's spacing: load delays single events). Diagnostics show the
#     arrival and send times when either fails.

gw_sse() {
	! _master_key_wanted "$@" ||
	    set -- -H "Authorization: Bearer $LLMGATE_MASTER_KEY" "$@"
	python3 "$top_srcdir/t/sse-client.py" "$@"
}

stream_timing() {
	mock_log | python3 -c '
import json, re, sys
out, ere = sys.argv[1], sys.argv[2]
try:
    log = json.load(sys.stdin)["log"]
except ValueError:
    log = []
sent = [e["sent"] for e in log if e.get("sent")]
last_sent = max(sent[-1]) if sent else 0.0
times = []
for line in out.splitlines():
    t, _, text = line.partition(" ")
    if re.search(ere, text):
        times.append(float(t))
if not times:
    print("0 0.000 0.000")
else:
    print("%d %.3f %.3f" % (len(times), times[-1] - times[0], last_sent - times[0]))
' "$1" "${2:-\"content\":\"tok}"
}

ok_streamed() {
	local name=$1 out=$2 min=$3 ere=${4:-'"content":"tok'} n spread lead bad=0
	read -r n spread lead <<<"$(stream_timing "$out" "$ere")"
	ok "$name: first event arrived ${lead}s before the upstream sent its last (not held back)" \
	    python3 -c 'import sys; sys.exit(not (int(sys.argv[1]) > 0 and float(sys.argv[2]) > 0))' \
	    "$n" "$lead" || bad=1
	ok "$name: $n events arrived over ${spread}s (>= $min s: streamed as sent)" \
	    python3 -c 'import sys; sys.exit(not (int(sys.argv[1]) > 1 and float(sys.argv[2]) >= float(sys.argv[3])))' \
	    "$n" "$spread" "$min" || bad=1
	[ "$bad" -eq 0 ] || _stream_diag "$out"
	return "$bad"
}

_stream_diag() {
	diag "arrival times (wall clock) and lines:" "$1" \
	    "mock send times of its last stream: $(mock_log | python3 -c '
import json, sys
sent = [e["sent"] for e in json.load(sys.stdin)["log"] if e.get("sent")]
print(" ".join("%.6f" % t for t in sent[-1]) if sent else "none")' 2>&1)"
}

# memcheck LOG CMD [ARGS...]: CMD (the gateway, as a CGI request) under
# valgrind: any error, or memory definitely or indirectly lost, makes it exit
# 99, and LOG gets the report. An ASan build of $LLMGATE cannot run under
# valgrind: it runs as it is, with ASan's leak check, exit 99 on a finding,
# its report (and the program's stderr) in LOG.
# memcheck_clean LOG: true when LOG reports no error (either checker).
memcheck() {
	local log=$1
	shift
	if ldd "$LLMGATE" | grep -q libasan; then
		ASAN_OPTIONS=detect_leaks=1:exitcode=99 "$@" 2>"$log"
	else
		valgrind --suppressions="$top_srcdir/t/valgrind.supp" --leak-check=full \
		    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		    --log-file="$log" "$@"
	fi
}
memcheck_clean() {
	if grep -q 'ERROR SUMMARY' "$1"; then
		grep -q 'ERROR SUMMARY: 0 errors' "$1"
	else
		! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1"
	fi
}

# --- Accounting: llmgate-admin, client keys, requests, JSON ---------------------
#
# admin ARGS...            llmgate-admin -c $ADMIN_CONF (default
#                          $TMPDIR_T/llmgate.ini) as the gateway user
# create_key VAR ARGS...   `admin key create --json ARGS`; sets VAR to the
#                          secret and VAR_ID to the key id (fails a test if not)
# api KEY METHOD PATH [JSON]  one request with KEY as bearer token ("" sends no
#                          key); sets STATUS, BODY, HDRS (the header file)
# chat_as KEY MODEL [TEXT [EXTRA-JSON-MEMBERS]]  POST /v1/chat/completions
#                          with chat_json MODEL TEXT EXTRA as the body
# hdr NAME                 a header of the last api/chat_as response ("" if none)
# jx EXPR                  a Python expression over d, the JSON on stdin:
#                          strings print as they are, anything else as JSON
# mock_log                 the mock's /_mock/stats; mock_clear resets it
# gw_worker_pids           the llmgate processes under the running server
# gw_streaming_pids [PID...]  those of them the mock is still answering
# gw_binary_pids           every process running $LLMGATE
# use_binary_copies        (below) run copies of both binaries from $TMPDIR_T/bin

ADMIN_BIN=${LLMGATE_ADMIN:-$top_builddir/src/llmgate-admin}

admin() {
	_need_tmp
	if [ -n "${_lib_copied:-}" ] && [ "$ADMIN_BIN" != "$TMPDIR_T/bin/llmgate-admin" ]; then
		cp -p "$ADMIN_BIN" "$TMPDIR_T/bin/llmgate-admin" ||
		    bail "cannot copy $ADMIN_BIN"
		chmod a+rx "$TMPDIR_T/bin/llmgate-admin"
		ADMIN_BIN=$TMPDIR_T/bin/llmgate-admin
	fi
	[ -x "$ADMIN_BIN" ] || bail "$ADMIN_BIN is missing: build it first (make)"
	as_gw_user "$ADMIN_BIN" -c "${ADMIN_CONF:-$TMPDIR_T/llmgate.ini}" "$@"
}

jx() {
	python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError as e:
    print("(not JSON: %s)" % e)
    sys.exit(1)
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))' "$1" 2>&1
}

create_key() {
	local var=$1 out
	shift
	out=$(admin key create --json "$@" 2>"$TMPDIR_T/create_key.err")
	if [ $? -ne 0 ] || ! [[ $(jx 'd["key"]' <<<"$out") =~ ^sk-[A-Za-z0-9]{48}$ ]]; then
		fail "llmgate-admin key create $*" "$out" "$(cat "$TMPDIR_T/create_key.err")"
		printf -v "$var" '%s' sk-no-such-key-created
		printf -v "${var}_ID" '%s' 0
		return 1
	fi
	printf -v "$var" '%s' "$(jx 'd["key"]' <<<"$out")"
	printf -v "${var}_ID" '%s' "$(jx 'd["id"]' <<<"$out")"
}

api() {
	local key=$1 method=$2 path=$3 args=(-sS --max-time 60 -o - -w '\n%{http_code}')
	_need_tmp
	HDRS=$TMPDIR_T/api.headers
	[ -z "$key" ] || args+=(-H "Authorization: Bearer $key")
	[ "$method" = GET ] || args+=(-X "$method")
	[ $# -lt 4 ] || args+=(-H 'Content-Type: application/json' --data-binary "$4")
	BODY=$(curl "${args[@]}" -D "$HDRS" "$GW_URL$path")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}

chat_json() {	# MODEL [TEXT [EXTRA-JSON-MEMBERS]]: the body chat_as sends
	local text=${2:-hello}
	text=${text//\\/\\\\}
	printf '%s' "{\"model\":\"$1\",${3:+$3,}\"messages\":[{\"role\":\"user\",\"content\":\"${text//\"/\\\"}\"}]}"
}

chat_as() {
	api "$1" POST /v1/chat/completions "$(chat_json "$2" "${3:-hello}" "${4:-}")"
}

hdr() {
	tr -d '\r' <"$HDRS" 2>/dev/null | awk -v n="${1,,}" '
	    { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^ +/, "", v) } }
	    END { print v }'
}

mock_log() { curl -sS "$MOCK_URL/_mock/stats"; }
mock_clear() { curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null; }

gw_worker_pids() {
	local p root exe
	exe=$(readlink -f "$LLMGATE")
	for root in "${_server_pids[@]}"; do
		for p in $(_descendants "$root"); do
			# " (deleted)": the binary was rebuilt while it ran
			[ "$(readlink "/proc/$p/exe" 2>/dev/null | sed 's/ (deleted)$//')" = "$exe" ] &&
			    echo "$p"
		done
	done
}

# gw_binary_pids: every process running the $LLMGATE binary, whoever started
# it (a spawn-fcgi or systemd restart leaves the server's process tree).
gw_binary_pids() {
	local p exe
	exe=$(readlink -f "$LLMGATE")
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] && echo "${p#/proc/}"
	done
}

# gw_streaming_pids [PID...]: of the given gateway processes (default: all
# under the running server), those holding an upstream request the mock is
# still answering (idle processes keep their upstream connection open too,
# so the mock's unfinished requests are matched to sockets by port).
gw_streaming_pids() {
	[ $# -gt 0 ] || set -- $(gw_worker_pids)
	mock_log | python3 -c '
import json, os, sys
port, pids = int(sys.argv[1]), sys.argv[2:]
busy = {int(e["peer"].rsplit(":", 1)[1]) for e in json.load(sys.stdin)["log"] if not e.get("done", True)}
inodes = set()
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    f = line.split()
    if int(f[2].split(":")[1], 16) == port and int(f[1].split(":")[1], 16) in busy:
        inodes.add(f[9])
for p in pids:
    try:
        fds = os.listdir("/proc/%s/fd" % p)
    except OSError:
        continue
    for fd in fds:
        try:
            link = os.readlink("/proc/%s/fd/%s" % (p, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            print(p)
            break
' "$MOCK_PORT" "$@"
}

# use_binary_copies: run copies of llmgate and llmgate-admin from
# $TMPDIR_T/bin, so that a rebuild while the test runs (make in another
# shell) cannot swap the binary under the servers mid-test.
use_binary_copies() {
	_need_tmp
	mkdir -p "$TMPDIR_T/bin" || bail "cannot create $TMPDIR_T/bin"
	[ "$LLMGATE" = "$TMPDIR_T/bin/llmgate" ] ||
	    cp "$LLMGATE" "$TMPDIR_T/bin/llmgate" || bail "cannot copy $LLMGATE"
	[ "$ADMIN_BIN" = "$TMPDIR_T/bin/llmgate-admin" ] ||
	    cp "$ADMIN_BIN" "$TMPDIR_T/bin/llmgate-admin" || bail "cannot copy $ADMIN_BIN"
	chmod 0755 "$TMPDIR_T/bin" "$TMPDIR_T/bin/llmgate" "$TMPDIR_T/bin/llmgate-admin"
	LLMGATE=$TMPDIR_T/bin/llmgate ADMIN_BIN=$TMPDIR_T/bin/llmgate-admin
	export LLMGATE
}

# write_mock_gateway FILE [LINE...]: the head of the accounting tests'
# configs: [gateway] with the data dir, the master key and each LINE,
# [retry] with one attempt, and [provider mock] for the mock upstream
# (models named mock*). Tests append their own [model], [tier] sections.
write_mock_gateway() {
	local file=$1 line
	shift
	[ -n "${MOCK_URL:-}" ] || bail "write_mock_gateway needs start_mock first"
	{
		printf '[gateway]\ndata_dir = %s\nmaster_key = env:LLMGATE_MASTER_KEY\n' \
		    "$TMPDIR_T/data"
		for line; do printf '%s\n' "$line"; done
		printf '\n[retry]\nattempts = 1\n\n[provider mock]\ntype = openai\n'
		printf 'base_url = %s/v1\napi_key = env:MOCK_API_KEY\nmatch = mock*\n\n' \
		    "$MOCK_URL"
	} >"$file"
}
