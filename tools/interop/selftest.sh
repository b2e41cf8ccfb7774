#!/usr/bin/env bash
# Runs every scenario of echo_client.py against echo_server.py (grpcio against grpcio) and checks
# that each prints "ok": true and exits 0. Stops the server by closing its stdin, and checks that
# it then exits 0. Usage: tools/interop/selftest.sh [scenario ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || { echo "selftest: no $python; run tools/bootstrap" >&2; exit 2; }

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(echo-many near-limit over-limit metadata deadline \
  client-cancel server-cancel status-unicode unimplemented concurrent)

# Generate the stubs once, before the server and clients race to.
"$python" -B -c "import sys; sys.path.insert(0, '$here'); import stubs"

# The server's stdin and stdout are pipes of this shell; closing the stdin pipe stops it.
coproc SERVER { exec "$python" "$here/echo_server.py" --host 127.0.0.1 --port 0; }
server_pid=$SERVER_PID
server_in=${SERVER[1]}
stop_server() {
  if kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid" 2>/dev/null || true; fi
}
trap stop_server EXIT

line=""
read -r -t 30 line <&"${SERVER[0]}" || true
if [[ ! "$line" =~ ^LISTENING\ ([0-9]+)$ ]]; then
  echo "selftest: the server did not print LISTENING <port> (got: '$line')" >&2
  exit 1
fi
port=${BASH_REMATCH[1]}
echo "selftest: server pid $server_pid listening on port $port"

failed=0
for scenario in "${scenarios[@]}"; do
  status=0
  output=$(timeout 30 "$python" "$here/echo_client.py" --target "127.0.0.1:$port" \
    --scenario "$scenario") || status=$?
  verdict=$("$python" - "$scenario" "$status" "$output" <<'PY'
import json, sys
scenario, status, output = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = output.splitlines()
try:
    if len(lines) != 1:
        raise ValueError(f"{len(lines)} lines on stdout, expected one")
    result = json.loads(lines[0])
except ValueError as error:
    print(f"FAIL  {scenario}: not one JSON object ({error}): {output[:300]!r}")
    sys.exit()
required = {"scenario": str, "ok": bool, "status_code": int, "status_name": str,
            "status_details": str, "responses": int, "initial_metadata": dict,
            "trailing_metadata": dict}
problems = [f"field {key} missing or not {kind.__name__}" for key, kind in required.items()
            if not isinstance(result.get(key), kind)]
if "failure" not in result:
    problems.append("field failure missing")
if result.get("scenario") != scenario:
    problems.append(f"scenario is {result.get('scenario')!r}")
if result.get("ok") is not True:
    problems.append(f"ok is not true: {result.get('failure')}")
if status != 0:
    problems.append(f"exit status {status}")
summary = (f"{result.get('status_name')} responses={result.get('responses')} "
           f"{result.get('duration_ms')} ms")
print(("FAIL  " if problems else "ok    ") + f"{scenario}: {summary}"
      + ("" if not problems else " -- " + "; ".join(problems)))
PY
)
  echo "$verdict"
  [[ "$verdict" == ok* ]] || { failed=$((failed + 1)); echo "$output" >&2; }
done

# Stop the server the way the Swift tests do: close its stdin; it must exit 0 promptly.
exec {server_in}>&-
server_status=0
for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then
  echo "FAIL  the server did not exit within 5 s of stdin EOF" >&2
  failed=$((failed + 1))
else
  wait "$server_pid" || server_status=$?
  if [ "$server_status" -ne 0 ]; then
    echo "FAIL  the server exited with status $server_status" >&2
    failed=$((failed + 1))
  else
    echo "ok    server exited 0 on stdin EOF"
  fi
fi
trap - EXIT

if [ "$failed" -ne 0 ]; then
  echo "selftest: $failed failed" >&2
  exit 1
fi
echo "selftest: all ${#scenarios[@]} scenarios passed"
