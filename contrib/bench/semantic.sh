#!/bin/sh
# semantic.sh: what a semantic cache lookup costs on this machine: a
# bucket filled to semantic_max_entries with int8 vectors of 768, 1536
# and 3072 dimensions, then microseconds per lookup that reads and
# compares every one (the worst case: no match) and per store at the cap
# (the oldest evicted). The embeddings call before a lookup is an upstream
# request and costs what the provider takes; this is the gateway's part.
#
#   contrib/bench/semantic.sh [CAP]     (from a configured build tree)
#
# Not a test: the figures depend on the machine. Run it on an idle machine.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
make -s t/bench-semantic >/dev/null
cap=${1:-1000}
for dim in 768 1536 3072; do
	./t/bench-semantic "$dim" "$cap" 200 2>/dev/null
done
