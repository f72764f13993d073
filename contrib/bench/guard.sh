#!/bin/sh
# guard.sh: what the guardrails cost on this machine: microseconds per KB
# of prompt for the policy step's detection (every span detector and the
# injection score) and for redaction, and nanoseconds per streamed event
# (~20-byte deltas) for the answer's output check and restore.
#
#   contrib/bench/guard.sh     (from a configured build tree)
#
# Not a test: the figures depend on the machine. Run it on an idle machine.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
make -s t/bench-detect >/dev/null
exec ./t/bench-detect
