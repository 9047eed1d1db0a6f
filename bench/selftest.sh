#!/bin/sh
# bench/selftest.sh - checks build/loadgen: its unit checks, then real runs
# against "loadgen serve" (a trivial XMPP server) on a random 127.0.0.1 port.
#   bench/selftest.sh [BUILD]        (make loadgen-test)
# Prints "N passed, N failed" last; exits non-zero when anything failed.
set -u
BUILD=${1:-build}
LG=$BUILD/loadgen
PY=${PYTHON:-python3}
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "selftest.sh: FAILED: $*" >&2; }

if "$LG" selftest; then ok; else bad "loadgen selftest"; fi

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$LG" serve --port "$PORT" 2>/dev/null &
SERVE=$!
trap 'kill $SERVE 2>/dev/null' EXIT INT TERM
i=0
while ! $PY -c "import socket; socket.create_connection(('127.0.0.1',$PORT),1)" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 50 ] && { bad "serve did not start"; break; }
	sleep 0.1
done

# run NAME CHECK -- loadgen args: CHECK is a Python expression over d (the JSON)
run() {
	name=$1 check=$2
	shift 3
	out=$(timeout 120 "$LG" --port "$PORT" --mech PLAIN --server-pid $SERVE \
		--json --quiet "$@" 2>&1 | tail -1)
	if printf '%s' "$out" | $PY -c "import json,sys; d=json.loads(sys.stdin.read()); sys.exit(0 if ($check) else 1)" 2>/dev/null; then
		ok
	else
		bad "$name: $out"
	fi
}

run "login" 'd["logins"] == 300 and d["login_failed"] == 0 and d["login_latency_p50_ms"] > 0' -- \
	login --users 300 --concurrency 50
run "login, 2 threads, no session" 'd["logins"] == 400 and d["login_failed"] == 0' -- \
	login --users 200 --count 400 -j 2 --no-session
run "chat, open loop" 'd["online"] == 100 and d["received"] > 1000 and d["lost"] == 0 and d["latency_p99_ms"] > 0' -- \
	chat --users 100 --duration 1 --drain 2
run "chat, fixed rate, 2 threads" 'd["online"] == 100 and d["lost"] == 0 and 1500 <= d["received"] <= 2100' -- \
	chat --users 100 --duration 1 --rate 2000 -j 2 --drain 2 --size 300
run "idle" 'd["online"] == 2000 and d["bytes_per_conn"] > 0 and d["connect_server_cpu_s"] >= 0' -- \
	idle --users 2000 --settle 0.5
run "wrong port fails cleanly" 'd["login_failed"] == 5 and d["err_connect"] == 5' -- \
	login --users 5 --timeout 5 --port 1 --src-addrs 0
kill $SERVE 2>/dev/null
wait $SERVE 2>/dev/null
echo "selftest.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
