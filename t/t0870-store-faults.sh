#!/bin/bash
# t0870-store-faults.sh: store faults degrade the gateway, never hang it,
# and heal without an operator. Under lighttpd and Apache mod_fcgid, with
# data_dir on its own small tmpfs and the fallback file on another:
#   1. data_dir read-only (chmod, workers killed so new ones open it so),
#      then writable again;
#   2. data_dir full (and the fallback file's disk nearly full), workers
#      killed meanwhile, then freed;
#   3. workers SIGKILLed inside store transactions by the fault points of
#      t/llmgate-fault (make check builds it with LLMGATE_FAULT_INJECTION):
#      after a usage put (write locks held), before a commit, and inside
#      Berkeley DB's own code (a btree comparison: the environment then
#      needs recovery, which the gateway runs by itself);
#   4. the same inside Berkeley DB while another process stays attached:
#      readiness says needs_recovery, keyed requests get 503
#      store_unavailable, the master key and /health are served, and the
#      store is recovered only once that process has left.
# During each fault /health answers and no request hangs; after it the
# service is back (readiness 200, a prepaid key served) within 30 s with
# no operator step, `llmgate-admin check` is clean, every request the
# client saw complete has its row (store, fallback file, or a LOST-STORE
# log line when both were full), every fallback line is a whole row, and
# balances never go below zero. The time to heal is printed per fault.
# First, without a server: a full disk after recovery (fresh, small
# regions) must not SIGBUS a process whose cache region then grows (a
# scan of 4000 usage rows): region files are allocated in full at
# attach. The code before this test died there with SIGBUS (exit 135).
# Needs root (tmpfs mounts; the gateway runs as www-data).
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP needs root to mount tmpfs (CI runs as root)"
	exit 0
fi

FAULT_BIN=${LLMGATE_FAULT:-$top_builddir/t/llmgate-fault}
[ -x "$FAULT_BIN" ] || bail "$FAULT_BIN is missing: make t/llmgate-fault (make check builds it)"

setup_tmp
use_binary_copies
cp "$FAULT_BIN" "$TMPDIR_T/bin/llmgate" || bail "cannot copy $FAULT_BIN"
chmod 0755 "$TMPDIR_T/bin/llmgate"
start_mock
export MOCK_API_KEY=sk-mock-upstream-t0870
export LLMGATE_MASTER_KEY=sk-master-t0870-key
export LLMGATE_FAULT_DIR=$TMPDIR_T/faults
GW_PASSENV=LLMGATE_FAULT_DIR
CONF=$TMPDIR_T/llmgate.ini
DATA=$TMPDIR_T/data
SPOOL=$TMPDIR_T/spool
FALLBACK=$SPOOL/usage-fallback.jsonl
DONE=$TMPDIR_T/completed	# request ids the client saw complete
HEAL_LIMIT=30

uid=$(id -u "$GW_USER") gid=$(id -g "$GW_GROUP")
mount -t tmpfs -o "size=48m,mode=2770,uid=$uid,gid=$gid" llmgate-t0870 "$DATA" ||
    bail "cannot mount a tmpfs on $DATA"
at_exit "umount -l '$DATA' 2>/dev/null"
mkdir -p "$SPOOL" "$LLMGATE_FAULT_DIR"
mount -t tmpfs -o "size=256k,mode=2770,uid=$uid,gid=$gid" llmgate-t0870s "$SPOOL" ||
    bail "cannot mount a tmpfs on $SPOOL"
at_exit "umount -l '$SPOOL' 2>/dev/null"
chown "$GW_USER:$GW_GROUP" "$LLMGATE_FAULT_DIR"
: >"$DONE"

write_mock_gateway "$CONF" "fallback_file = $FALLBACK"
cat >>"$CONF" <<EOF
[model mock-ok]
provider = mock
input_price = 10
output_price = 30
EOF

create_key PK --name payer --prepaid
admin topup payer 1000 >/dev/null || bail "topup failed"

# --- helpers ------------------------------------------------------------------

# req KEY [TEXT]: one chat request, at most 15 s; records its id in $DONE
# when the client saw it complete (200 with a body).
req() {
	local out code rid
	out=$(curl -sS --max-time 15 -o "$TMPDIR_T/req.body" -D "$TMPDIR_T/req.h" \
	    -w '%{http_code}' -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
	    --data-binary "$(chat_json mock-ok "${2:-hello}" '"max_tokens":8')" \
	    "$GW_URL/v1/chat/completions" 2>/dev/null)
	code=${out:-000}
	rid=$(tr -d '\r' <"$TMPDIR_T/req.h" 2>/dev/null | awk -F': ' 'tolower($1) == "x-request-id" {print $2}')
	if [ "$code" = 200 ] && grep -q '"choices"' "$TMPDIR_T/req.body"; then
		echo "$rid" >>"$DONE"
	fi
	REQ_STATUS=$code
}

health_code() {
	curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$GW_URL/health"
}

ready() {
	[ "$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$GW_URL/health/readiness")" = 200 ]
}

# served: readiness 200 and a prepaid-key request answered 200.
served() {
	ready || return 1
	req "$PK" "heal probe"
	[ "$REQ_STATUS" = 200 ]
}

kill_workers() {
	local p
	for p in $(gw_worker_pids); do
		kill -KILL "$p" 2>/dev/null
	done
}

# traffic NAME N: N requests (master and prepaid keys in turn) while the
# fault lasts; none may hang (curl's 15 s cap: status 000) and /health
# must answer 200 after each.
traffic() {
	local name=$1 n=$2 i hung=0 sick=0 codes=""
	for ((i = 0; i < n; i++)); do
		if ((i % 2)); then req "$PK" "$name $i"; else req "$LLMGATE_MASTER_KEY" "$name $i"; fi
		[ "$REQ_STATUS" != 000 ] || hung=$((hung + 1))
		codes+=" $REQ_STATUS"
		[ "$(health_code)" = 200 ] || sick=$((sick + 1))
	done
	diag "$SERVER_KIND: $name: answers:$codes"
	is "$hung" 0 "$SERVER_KIND: $name: no request hung ($n sent)"
	is "$sick" 0 "$SERVER_KIND: $name: /health answered 200 after each"
}

# heal NAME START_USEC: the service is back within HEAL_LIMIT s and stays
# so: served at every probe for STEADY_S s (a process that has not yet
# noticed the fault must not pass for a healed one: each process's
# watchdog looks at the store every second). The time to heal is from
# START to the first probe of that steady run.
STEADY_S=3
heal() {
	local name=$1 t0=$2 deadline since=0 now
	deadline=$(( t0 + (HEAL_LIMIT + STEADY_S) * 1000000 ))
	while now=$(_now_usec); [ "$now" -lt "$deadline" ]; do
		if served; then
			[ "$since" -ne 0 ] || since=$(_now_usec)
			[ $(( $(_now_usec) - since )) -lt $(( STEADY_S * 1000000 )) ] || break
		else
			since=0
		fi
		sleep 0.2
	done
	HEAL_MS=$(( since > 0 ? (since - t0) / 1000 : -1 ))
	if [ "$since" -gt 0 ] && [ "$HEAL_MS" -le $(( HEAL_LIMIT * 1000 )) ] &&
	    [ $(( $(_now_usec) - since )) -ge $(( STEADY_S * 1000000 )) ]; then
		pass "$SERVER_KIND: $name: served again after ${HEAL_MS} ms (and for ${STEADY_S} s since), no operator step"
		diag "time to heal: $SERVER_KIND $name: ${HEAL_MS} ms"
		echo "$SERVER_KIND $name $HEAL_MS" >>"$TMPDIR_T/heal-times"
	else
		fail "$SERVER_KIND: $name: not served steadily within $HEAL_LIMIT s" \
		    "$(curl -s --max-time 5 "$GW_URL/health/readiness")"
	fi
}

# books NAME: check clean, rows complete, fallback lines whole, balance >= 0.
books() {
	local name=$1 out missing
	out=$(admin check 2>&1)
	ok "$SERVER_KIND: $name: llmgate-admin check is clean" test $? -eq 0 ||
	    diag "$out"
	# The logs of every server this test ran: LOST-STORE lines.
	out=$(python3 - "$DONE" "$SPOOL" "$TMPDIR_T" 3< <(admin usage --rows --from 0 2>/dev/null) <<'EOF'
import glob, json, os, re, sys
done_file, spool, top = sys.argv[1:4]
have, bad = set(), 0
for line in os.fdopen(3):
    have.add(json.loads(line)["request_id"])
for f in glob.glob(os.path.join(spool, "usage-fallback.jsonl*")):
    for line in open(f):
        try:
            have.add(json.loads(line)["request_id"])
        except ValueError:
            bad += 1
for log in glob.glob(os.path.join(top, "*", "*.out")) + glob.glob(os.path.join(top, "*", "*.log")):
    for line in open(log, errors="replace"):
        m = re.search(r"LOST-STORE row=(\{.*\})\s*$", line)
        if m:
            have.add(json.loads(m.group(1))["request_id"])
want = [l.strip() for l in open(done_file) if l.strip()]
missing = [r for r in want if r not in have]
print(len(want), len(missing), bad, " ".join(missing[:5]))
EOF
)
	read -r total missing bad rest <<<"$out"
	is "${missing:-x}" 0 "$SERVER_KIND: $name: every request seen complete has its row ($total so far) $rest"
	is "${bad:-x}" 0 "$SERVER_KIND: $name: every fallback line is a whole row"
	out=$(admin balance payer --json | jx 'd["balance_micro_usd"]')
	ok "$SERVER_KIND: $name: the prepaid balance is not below zero ($out)" test "${out:--1}" -ge 0
}

# --- a full disk and a growing region --------------------------------------------

sigbus_check() {
	local dir=$TMPDIR_T/sigbus conf=$TMPDIR_T/sigbus.ini rc n lpid t0 ms out
	rm -f "$TMPDIR_T/locked"
	mkdir -p "$dir" || bail "cannot create $dir"
	mount -t tmpfs -o "size=40m,mode=2770,uid=$uid,gid=$gid" llmgate-t0870b "$dir" ||
	    bail "cannot mount a tmpfs on $dir"
	at_exit "umount -l '$dir' 2>/dev/null"
	sed "s|^data_dir = .*|data_dir = $dir|" "$CONF" >"$conf"
	python3 - "$dir/rows.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(4000):
        f.write(json.dumps({"v": 1, "time_us": 1773100800000000 + i, "id": str(i + 1),
            "request_id": "bulk%d" % i, "key_id": 0, "key_name": "master", "agent": "master",
            "tier": "", "route": "chat", "requested": "mock-ok", "served": "mock-ok",
            "provider": "mock", "prompt_tokens": 1, "completion_tokens": 1, "cached_tokens": 0,
            "estimated": False, "cost_micro_usd": 3, "cost_usd": "0.000003", "latency_ms": 1,
            "ttft_ms": 0, "status": 200, "attempts": 1, "stream": False,
            "client_aborted": False, "reservation": "0"}) + "\n")
EOF
	chown "$GW_USER:$GW_GROUP" "$dir/rows.jsonl"
	like "$(ADMIN_CONF=$conf admin replay "$dir/rows.jsonl" 2>&1)" 'imported 4000' \
	    "4000 usage rows imported into a store on its own tmpfs"
	ADMIN_CONF=$conf admin recover >/dev/null 2>&1
	ok "recovered: fresh regions" test $? -eq 0
	dd if=/dev/zero of="$dir/fill" bs=64k 2>/dev/null
	ADMIN_CONF=$conf admin usage --rows --from 0 >"$TMPDIR_T/sigbus.out" 2>"$TMPDIR_T/sigbus.err"
	rc=$?
	n=$(wc -l <"$TMPDIR_T/sigbus.out")
	is "$rc" 0 "full disk: a scan that grows the cache region exits 0 (135 is SIGBUS)"
	is "$n" 4000 "full disk: it read every row"
	rm -f "$dir/fill"

	# An open that cannot finish (open.lock held for ever by a stuck
	# opener): llmgate-admin gives up within seconds and says why.
	python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(30)' "$dir/open.lock" "$TMPDIR_T/locked" &
	lpid=$!
	wait_until 10 test -e "$TMPDIR_T/locked"
	t0=$(_now_usec)
	out=$(ADMIN_CONF=$conf admin check 2>&1)
	rc=$? ms=$(( ($(_now_usec) - t0) / 1000 ))
	kill "$lpid" 2>/dev/null
	wait "$lpid" 2>/dev/null
	ok "admin check on a store that cannot open fails (exit $rc) in ${ms} ms, no hang" \
	    test "$rc" -ne 0 -a "$ms" -lt 10000
	like "$out" 'opening the store' "it says why: $out"
	umount -l "$dir"
}

# --- faults -------------------------------------------------------------------

fault_readonly() {
	local t0
	chmod -R a-w "$DATA"
	traffic read-only 6
	kill_workers
	traffic read-only-respawned 6
	chmod -R ug+w "$DATA"
	t0=$(_now_usec)
	heal read-only "$t0"
	books read-only
}

fault_full() {
	local t0 free
	# The fallback file's disk too, but for a few rows: some are cut.
	free=$(( $(stat -f -c '%a*%S' "$SPOOL") ))
	dd if=/dev/zero of="$SPOOL/fill" bs=1k count=$(( free / 1024 - 3 )) 2>/dev/null
	dd if=/dev/zero of="$DATA/fill" bs=64k 2>/dev/null
	traffic full-disk 6
	kill_workers
	traffic full-disk-respawned 6
	rm -f "$DATA/fill" "$SPOOL/fill"
	t0=$(_now_usec)
	heal full-disk "$t0"
	books full-disk
}

# fault_kill POINT: the next request reaching POINT kills its worker,
# while a stream of the prepaid key runs beside it (under mod_fcgid in
# another process, which must notice, leave and let the store heal).
fault_kill() {
	local point=$1 t0 spid
	curl -sS -N --max-time 20 -o "$TMPDIR_T/stream.body" -D "$TMPDIR_T/stream.h" \
	    -H "Authorization: Bearer $PK" -H 'Content-Type: application/json' \
	    --data-binary '{"model":"mock-ok","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"MOCK{chunks=15,delay=0.2}"}]}' \
	    "$GW_URL/v1/chat/completions" 2>/dev/null &
	spid=$!
	sleep 0.5
	touch "$LLMGATE_FAULT_DIR/$point"
	chown "$GW_USER" "$LLMGATE_FAULT_DIR/$point"
	t0=$(_now_usec)
	req "$PK" "killed at $point"
	ok "$SERVER_KIND: $point: the fault point fired" test ! -e "$LLMGATE_FAULT_DIR/$point"
	# The request whose worker died settling it was answered before its
	# settlement: its reservation is reclaimed (billed, flagged
	# worker_died) by a live process or by the check in books, so it too
	# must have its row.
	[ "$REQ_STATUS" != 200 ] ||
	    diag "$SERVER_KIND: $point: the killed request was answered 200 before its worker died"
	wait "$spid"
	if grep -q '^data: \[DONE\]' "$TMPDIR_T/stream.body"; then
		tr -d '\r' <"$TMPDIR_T/stream.h" | awk -F': ' 'tolower($1) == "x-request-id" {print $2}' >>"$DONE"
		diag "$SERVER_KIND: $point: the stream beside it completed"
	else
		diag "$SERVER_KIND: $point: the stream beside it was cut (same process)"
	fi
	heal "kill at $point" "$t0"
	traffic "after kill at $point" 4
	books "kill at $point"
}

# fault_peer: a process killed inside Berkeley DB while another one stays
# attached (a stand-in holding a read lock on attach.lock that does not
# leave): the gateway must wait, say "needs_recovery" on readiness, keep
# /health and the master key served, refuse keyed requests with 503
# store_unavailable, and recover by itself once the stand-in leaves.
fault_peer() {
	local lpid t0 body
	rm -f "$TMPDIR_T/peer-locked"
	python3 -c 'import fcntl, os, sys, time
f = open(sys.argv[1], "r")
fcntl.lockf(f, fcntl.LOCK_SH)
open(sys.argv[2], "w").close()
time.sleep(120)' "$DATA/attach.lock" "$TMPDIR_T/peer-locked" &
	lpid=$!
	wait_until 10 test -e "$TMPDIR_T/peer-locked"
	touch "$LLMGATE_FAULT_DIR/in-library"
	chown "$GW_USER" "$LLMGATE_FAULT_DIR/in-library"
	# Its row comes from the reclaim once the store has healed (books).
	req "$PK" "killed in library, peer attached"
	readiness_says() {
		body=$(curl -s --max-time 5 "$GW_URL/health/readiness")
		[[ $body == *'"store":"needs_recovery"'* ]]
	}
	ok "$SERVER_KIND: peer attached: readiness says needs_recovery" wait_until 20 readiness_says
	diag "$SERVER_KIND: readiness: $body"
	is "$(health_code)" 200 "$SERVER_KIND: peer attached: /health answers 200"
	req "$PK" "prepaid while waiting"
	is "$REQ_STATUS" 503 "$SERVER_KIND: peer attached: a prepaid key gets 503"
	like "$(cat "$TMPDIR_T/req.body")" 'store_unavailable' "$SERVER_KIND: peer attached: store_unavailable"
	req "$LLMGATE_MASTER_KEY" "master while waiting"
	is "$REQ_STATUS" 200 "$SERVER_KIND: peer attached: the master key is served"
	ok "$SERVER_KIND: peer attached: the store is not recovered under it" test -e "$DATA/needs-recovery"
	kill "$lpid" 2>/dev/null
	wait "$lpid" 2>/dev/null
	t0=$(_now_usec)
	heal "in-library kill, peer left" "$t0"
	books "in-library kill, peer left"
}

# An open that outlasts its bound (3 s; here 6 s inside failchk, as under
# heavy load) is given up on and runs on in a thread. The process must not
# exit under it: it would die inside Berkeley DB and leave the store
# needing recovery for every process. A CGI request is such a process; the
# fault directory is its own (the server's processes never see the point).
fault_late_open() {
	local fdir=$TMPDIR_T/faults-cgi out t0 ms died0 died1
	mkdir -p "$fdir"
	touch "$fdir/slow-failchk"
	chown -R "$GW_USER" "$fdir"
	req "$PK" "before a late open"	# the server's processes are attached
	died0=$(grep -c 'died inside Berkeley DB\|needs recovery' "$SERVER_LOG")
	t0=$(_now_usec)
	out=$(as_gw_user env -i "PATH=$PATH" "LLMGATE_CONFIG=$CONF" \
	    "LLMGATE_FAULT_DIR=$fdir" "LLMGATE_MASTER_KEY=$LLMGATE_MASTER_KEY" \
	    "MOCK_API_KEY=$MOCK_API_KEY" REQUEST_METHOD=GET \
	    REQUEST_URI=/health/readiness "$TMPDIR_T/bin/llmgate" \
	    2>"$TMPDIR_T/late-open.err" | tr -d '\r')
	ms=$(( ($(_now_usec) - t0) / 1000 ))
	ok "$SERVER_KIND: late open: the fault fired inside failchk" test ! -e "$fdir/slow-failchk"
	like "$out" 'Status: 503' "$SERVER_KIND: late open: the CGI request was answered meanwhile (503, not ready)"
	like "$(cat "$TMPDIR_T/late-open.err")" 'finished late' \
	    "$SERVER_KIND: late open: the open finished in its thread and was closed"
	ok "$SERVER_KIND: late open: the process exited after it (${ms} ms >= 6000)" test "$ms" -ge 6000
	t0=$(_now_usec)
	heal "late open" "$t0"
	died1=$(grep -c 'died inside Berkeley DB\|needs recovery' "$SERVER_LOG")
	is "$died1" "$died0" "$SERVER_KIND: late open: no process saw a death inside Berkeley DB"
}

scenarios() {
	ok "$SERVER_KIND: serving before the faults" served
	fault_late_open
	fault_readonly
	fault_full
	fault_kill txn-put
	fault_kill txn-commit
	fault_kill in-library
	fault_peer
}

sigbus_check

for kind in ${LLMGATE_SERVERS:-lighttpd apache}; do
	diag "=== $kind ==="
	"start_$kind" "$CONF"
	scenarios
	stop_server
done

diag "time to heal (ms): $(tr '\n' ';' <"$TMPDIR_T/heal-times")"
done_testing
