#!/usr/bin/env bash
# Create (or reuse) .work/instrument-venv: a venv apart from the project's, holding
# `opentelemetry-instrument`, this SDK (editable) and three third-party CLIs from PyPI, so
# tests/test_instrumentor.py can run someone else's click, typer and argparse CLI with zero
# code change. Idempotent: a stamp records what the venv was built from; a change rebuilds it.
#
#   bash examples/instrument/setup-venv.sh            # -> .work/instrument-venv
#   INSTRUMENT_VENV=/tmp/v PYTHON=python3.12 bash examples/instrument/setup-venv.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${INSTRUMENT_VENV:-$ROOT/.work/instrument-venv}
REQS="$ROOT/examples/instrument/requirements.txt"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
STAMP="$VENV/.built-from"
# One build at a time (two test workers may ask at once): the second waits, then finds the
# stamp fresh.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
want=$(printf '%s\n%s\n%s\n' "$ROOT" "$("$PYTHON" -c 'import sys; print(sys.version)')" \
    "$(cat "$REQS" "$ROOT/pyproject.toml")" | cksum)
if [ -x "$VENV/bin/opentelemetry-instrument" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input --quiet)
"${pip[@]}" install -r "$REQS"
"${pip[@]}" install -e "$ROOT"
"$VENV/bin/opentelemetry-instrument" --version >/dev/null
printf '%s\n' "$want" > "$STAMP"
echo "instrument venv ready: $VENV"
