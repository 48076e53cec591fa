#!/usr/bin/env bash
# The main job: run the instrumented example CLI a few times and show its telemetry.
# No server is needed: with no OTLP endpoint configured, records stay on this machine.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export XDG_STATE_HOME="$PWD/.work/demo-state"
rm -rf "$XDG_STATE_HOME"
unset DO_NOT_TRACK OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT CI DEPLOYCTL_TELEMETRY
run() { echo "\$ deployctl $*"; "$PY" examples/deploy/deployctl.py "$@"; echo "  (exit $?)"; }

echo "== First run: the one-time notice (on stderr); nothing is recorded for this run"
run stage list
echo
echo "== A few commands, successes and failures"
run deploy --stage dev
run deploy --stage prod --aws-access-key-id AKIAIOSFODNN7EXAMPLE
run stage new preview
run deploy --stage dev --fail quota 2>/dev/null
run deploy --no-such-flag 2>/dev/null
run exit 3
echo
echo "== Debug mode prints the exact record on stderr (one JSON line; indented here) and sends nothing"
DEPLOYCTL_TELEMETRY_DEBUG=1 "$PY" examples/deploy/deployctl.py stage list 2>&1 >/dev/null | "$PY" -c '
import json, sys
for line in sys.stdin:
    label, sep, record = line.partition("] {")
    if not sep:
        print(line, end="")
        continue
    print(label + "]")
    print(json.dumps(json.loads("{" + record), indent=2, sort_keys=True))
'
echo
echo "== Why is it on?"
"$PY" examples/deploy/deployctl.py telemetry status
echo
echo "== What this machine recorded"
"$PY" -m otel_cli_telemetry --app deployctl report
echo
echo "To send to a collector instead (one on this machine: collector/README.md, \"Run it on your machine\"):"
echo "  DEPLOYCTL_TELEMETRY=1 OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 $PY examples/deploy/deployctl.py deploy"
