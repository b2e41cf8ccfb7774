#!/usr/bin/env bash
# Runs every scenario of recognize_client.py against fake_recognizer.py (grpcio against grpcio)
# and checks that each prints one JSON line with "ok": true and exits 0; then, against the fake
# started with each --fault, checks that the client notices (exit 1, "ok": false).
# Usage: tools/interop/recognize_selftest.sh [scenario ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || { echo "recognize_selftest: no $python; run tools/bootstrap" >&2; exit 2; }

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(single multiple no-result no-speech too-much-speech \
  not-recognizing bad-request)

# Generate the stubs once, before the server and clients race to.
"$python" -B -c "import sys; sys.path.insert(0, '$here'); import stubs"

failed=0

# run_against EXPECT [--fault NAME]: starts a fake, runs every scenario, expects "ok" or "fail".
run_against() {
  local expect=$1; shift
  local label="fake${1:+ $*}"
  coproc SERVER { exec "$python" "$here/fake_recognizer.py" --host 127.0.0.1 --port 0 "$@"; }
  local server_pid=$SERVER_PID server_in=${SERVER[1]} line=""
  read -r -t 30 line <&"${SERVER[0]}" || true
  if [[ ! "$line" =~ ^LISTENING\ ([0-9]+)$ ]]; then
    echo "FAIL  $label did not print LISTENING <port> (got: '$line')" >&2
    kill -TERM "$server_pid" 2>/dev/null || true
    failed=$((failed + 1)); return
  fi
  local port=${BASH_REMATCH[1]}
  for scenario in "${scenarios[@]}"; do
    local status=0 output
    output=$(timeout 30 "$python" "$here/recognize_client.py" --target "127.0.0.1:$port" \
      --scenario "$scenario") || status=$?
    local verdict
    verdict=$("$python" - "$scenario" "$status" "$expect" "$label" "$output" <<'PY'
import json, sys
scenario, status, expect, label, output = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
lines = output.splitlines()
try:
    if len(lines) != 1:
        raise ValueError(f"{len(lines)} lines on stdout, expected one")
    result = json.loads(lines[0])
except ValueError as error:
    print(f"FAIL  {label} {scenario}: not one JSON object ({error}): {output[:300]!r}")
    sys.exit()
required = {"scenario": str, "ok": bool, "grpc_status": str, "responses": list, "summary": list}
problems = [f"field {key} missing or not {kind.__name__}" for key, kind in required.items()
            if not isinstance(result.get(key), kind)]
if "failure" not in result:
    problems.append("field failure missing")
if result.get("scenario") != scenario:
    problems.append(f"scenario is {result.get('scenario')!r}")
if len(result.get("summary", [])) != len(result.get("responses", [])):
    problems.append("summary and responses differ in length")
if expect == "ok":
    if result.get("ok") is not True:
        problems.append(f"ok is not true: {result.get('failure')}")
    if status != 0:
        problems.append(f"exit status {status}")
else:
    if result.get("ok") is not False or not result.get("failure"):
        problems.append("the client did not notice the fault")
    if status != 1:
        problems.append(f"exit status {status}, expected 1")
line = f"{label} {scenario}: {result.get('grpc_status')} {result.get('summary')}"
if expect != "ok":
    line += f" -- failure: {result.get('failure')}"
print(("FAIL  " if problems else "ok    ") + line + ("" if not problems else " -- " + "; ".join(problems)))
PY
)
    echo "$verdict"
    [[ "$verdict" == ok* ]] || { failed=$((failed + 1)); echo "$output" >&2; }
  done
  # Stop the fake the way the Swift tests stop a peer: close its stdin; it must exit 0.
  exec {server_in}>&-
  for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "FAIL  $label did not exit within 5 s of stdin EOF" >&2
    kill -TERM "$server_pid" 2>/dev/null || true
    failed=$((failed + 1))
  else
    local server_status=0
    wait "$server_pid" || server_status=$?
    if [ "$server_status" -ne 0 ]; then
      echo "FAIL  $label exited with status $server_status" >&2
      failed=$((failed + 1))
    fi
  fi
}

run_against ok
run_against fail --fault grpc-error
run_against fail --fault after-status
# Only scenarios with a transcript can show a wrong one.
all=("${scenarios[@]}"); scenarios=()
for s in "${all[@]}"; do case $s in single|multiple|too-much-speech) scenarios+=("$s");; esac; done
[ ${#scenarios[@]} -eq 0 ] || run_against fail --fault wrong-text

if [ "$failed" -ne 0 ]; then
  echo "recognize_selftest: $failed failed" >&2
  exit 1
fi
echo "recognize_selftest: all checks passed"
