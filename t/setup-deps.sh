#!/bin/bash
# setup-deps.sh: install what building and testing llmgate needs (Debian,
# Ubuntu). Idempotent: installed packages are left alone, and apt-get update
# only runs when something is missing. Run as root; as another user it only
# reports what is missing (exit 1).
#
# The web servers are installed but never started or enabled here: a
# temporary policy-rc.d stops their packages from starting the system
# services during installation. The tests run private instances of their own
# (t/lib.sh).
#
# Also installs the openai npm client of t/t0300-openai-sdk.sh and the
# puppeteer-core of t/t0130-dashboard.sh into t/sdk/node_modules (npm, from
# t/sdk/package.json). chromium is the browser t/t0130-dashboard.sh drives;
# libjs-chart.js the dashboard's chart library (served under /javascript/).
set -u
cd "$(dirname "$0")/.." || exit 1

packages="build-essential autoconf automake libtool pkg-config
	libfcgi-dev libcurl4-openssl-dev libjson-c-dev libdb-dev libinih-dev
	libssl-dev lighttpd apache2 libapache2-mod-fcgid nginx-light spawn-fcgi
	wrk curl python3 valgrind clang chromium libjs-chart.js"
# nodejs/npm may come from elsewhere (nodesource, nvm): use those if present.
command -v node >/dev/null 2>&1 || packages="$packages nodejs"
command -v npm >/dev/null 2>&1 || packages="$packages npm"
# promtool (Debian package prometheus): t/t0910-metrics.sh checks /metrics
# and contrib/prometheus with it. Its service is not started (below).
packages="$packages prometheus"

missing=
for p in $packages; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	[ "$status" = "install ok installed" ] || missing="$missing $p"
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup-deps.sh: missing packages:$missing" >&2
		echo "setup-deps.sh: run as root (or: sudo apt-get install$missing)" >&2
		exit 1
	fi
	echo "setup-deps.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# Keep the packages from starting apache2/nginx/lighttpd on port 80.
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get update || exit 1
	# shellcheck disable=SC2086  # one word per package
	apt-get install -y $missing || exit 1
fi

# libFuzzer's runtime for t/fuzz (t/t0950-fuzz.sh): Debian ships it apart
# from clang, in libclang-rt-MAJOR-dev.
if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
	major=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
	if [ "$(id -u)" -ne 0 ] || [ -z "$major" ]; then
		echo "setup-deps.sh: missing libFuzzer's runtime (libclang-rt-${major:-N}-dev)" >&2
		exit 1
	fi
	echo "setup-deps.sh: installing libclang-rt-$major-dev"
	DEBIAN_FRONTEND=noninteractive apt-get install -y "libclang-rt-$major-dev" ||
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "libclang-rt-$major-dev"; } ||
	    exit 1
fi

# The openai npm client for t/t0300-openai-sdk.sh and puppeteer-core, which
# drives the system Chromium for t/t0130-dashboard.sh.
if [ ! -d t/sdk/node_modules/openai ] || [ ! -d t/sdk/node_modules/puppeteer-core ]; then
	echo "setup-deps.sh: npm install in t/sdk"
	(cd t/sdk && npm install --no-package-lock --no-audit --no-fund --loglevel=error) || exit 1
fi
exit 0
