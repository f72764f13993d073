#!/bin/bash
# t0825-in-library-load.sh: t0820's load and kill, with a worker dying
# inside Berkeley DB's own code at the kill (t/llmgate-fault): under
# mod_fcgid with some 20 processes the store needs recovery, every process
# leaves it (a thread blocked in it is left to the exit), the first one
# alone recovers it, and nothing that completed loses its row.
T0820_IN_LIBRARY=1 exec bash "$(dirname "$0")/t0820-concurrency.sh"
