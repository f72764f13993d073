# common.sh: what the benchmark scripts share; sourced after t/lib.sh.

# upstream_nginx DIR HTTP SERVER: nginx on a free loopback port ($UP_PORT)
# as a fast upstream; HTTP goes in its http block, SERVER in its one server
# block; its temp files, pid and logs in DIR.
upstream_nginx() {
	local dir=$1 http=$2 server=$3
	UP_PORT=$(free_port)
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $dir;
	proxy_temp_path $dir;
	fastcgi_temp_path $dir;
	uwsgi_temp_path $dir;
	scgi_temp_path $dir;
$http
	server {
		listen 127.0.0.1:$UP_PORT;
$server
	}
}
EOF
	_spawn "$dir/out.log" nginx -g 'daemon off;' -c "$dir/nginx.conf"
}

# bench_ini FILE ACCOUNTING LOG_LEVEL [GATEWAY_LINES]: the gateway's config:
# the master key, one OpenAI-protocol provider "fast" on $UP_PORT and one
# priced model "bench" with no per-model rate limit (the bench measures the
# gateway, not 429s).
bench_ini() {
	cat >"$1" <<EOF
[gateway]
data_dir = $TMPDIR_T/data
master_key = env:LLMGATE_MASTER_KEY
log_level = $3
accounting = $2
${4:-}

[provider fast]
type = openai
base_url = http://127.0.0.1:$UP_PORT/v1
api_key = none

[model bench]
provider = fast
input_price = 1.00
output_price = 2.00
rpm = 0
EOF
}

# bench_policy_ini FILE: add a policy with every detector on, the answer
# checked too, and agent "guarded" under it (the master key names it with
# X-Agent: guarded).
bench_policy_ini() {
	cat >>"$1" <<'EOF'

[policy all]
pii = redact
confidential = log
injection = log
restore = on
output = redact

[agent guarded]
policy = all
EOF
}
