#!/bin/bash
# check.sh: install what is missing, build, and run the whole test suite.
# This is the README's test command:  contrib/check.sh
# Environment: CONFIGURE_FLAGS (e.g. --enable-asan), JOBS (make -j for the
# build), CHECK_JOBS (tests at once; default one more than the cores: the
# tests mostly wait on streams, timeouts and servers, not on the CPU; twice
# the cores once made t0850's kills under mod_fcgid heal too slowly).
set -eu
cd "$(dirname "$0")/.."
top=$PWD

t/setup-deps.sh
[ -x configure ] || ./autogen.sh
if [ ! -f Makefile ] || [ -n "${CONFIGURE_FLAGS:-}" ]; then
	# shellcheck disable=SC2086
	./configure ${CONFIGURE_FLAGS:-}
fi
make -j"${JOBS:-$(nproc)}"
status=0
make -j"${CHECK_JOBS:-$(($(nproc) + 1))}" check || status=$?

# One plain summary line computed from the per-test TAP results.
# (Automake's TAP driver writes one ":test-result:" line per TAP test.)
pass=$(cat t/*.trs 2>/dev/null | grep -c '^:test-result: PASS' || true)
fail=$(cat t/*.trs 2>/dev/null | grep -Ec '^:test-result: (FAIL|XPASS|ERROR)' || true)
if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
	fail=1
fi
echo "tests: $pass passed, $fail failed"
exit "$status"
