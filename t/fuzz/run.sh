#!/bin/bash
# run.sh: build the libFuzzer targets with clang (ASan + UBSan) and run
# each for SECONDS (default 60), seeded with the unit-test fixtures.
#   t/fuzz/run.sh [SECONDS]
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=${FUZZ_DIR:-t/tmp/fuzz}
mkdir -p "$out"
srcs="src/validate.c src/sse.c src/buf.c src/provider.c src/provider-openai.c
	src/config.c src/money.c"
for t in request sse; do
	# shellcheck disable=SC2086
	clang -g -O1 -fsanitize=fuzzer,address,undefined \
	    $(pkg-config --cflags json-c libcurl inih) -DPACKAGE_VERSION='"fuzz"' \
	    "t/fuzz/fuzz-$t.c" $srcs $(pkg-config --libs json-c libcurl inih) -lm \
	    -o "$out/fuzz-$t"
	mkdir -p "$out/corpus-$t"
done
cp t/data/unit/*.sse t/data/unit/*.txt "$out/corpus-sse/" 2>/dev/null || true
echo '{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}' \
    >"$out/corpus-request/seed.json"
for t in request sse; do
	echo "fuzz-$t: ${secs}s"
	"$out/fuzz-$t" -max_total_time="$secs" -max_len=8192 \
	    -artifact_prefix="$out/" "$out/corpus-$t" 2>&1 | tail -n 1
done
