"""The hot path's JSON (``_jsonlite``) must agree with the ``json`` package, byte for byte.

It drives CPython's ``_json`` accelerator directly to spare a recording run the ``json``
package's import (five regular expressions compiled, ~5 M instructions); any difference
from ``json`` would change what is spooled, stored or read back.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_cli_telemetry import _jsonlite

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text()
)
DOCUMENTS = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (json round-trips NaN as NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@settings(max_examples=600, deadline=None)
@given(DOCUMENTS, st.booleans())
def test_dumps_and_loads_agree_with_json(document: Any, sort_keys: bool) -> None:
    ours = _jsonlite.dumps(document, sort_keys=sort_keys)
    assert ours == json.dumps(document, separators=(",", ":"), sort_keys=sort_keys)
    assert _same(_jsonlite.loads(ours), json.loads(ours))
    assert _same(_jsonlite.loads(ours.encode()), json.loads(ours.encode()))
    spaced = json.dumps(document, indent=1)
    assert _same(_jsonlite.loads(f" \n{spaced}\t\r\n"), json.loads(f" \n{spaced}\t\r\n"))


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_arbitrary_input_is_refused_or_read_as_json_does(data: bytes | str) -> None:
    try:
        expected: Any = ("value", json.loads(data))
    except (ValueError, RecursionError) as exc:
        expected = ("error", type(exc))
    try:
        got: Any = ("value", _jsonlite.loads(data))
    except (ValueError, RecursionError) as exc:
        got = ("error", type(exc))
    assert got[0] == expected[0]
    if got[0] == "value":
        assert _same(got[1], expected[1])
    else:
        assert got[1] is expected[1]


@pytest.mark.parametrize(
    "text",
    ["", " ", "{", "[1,]", "1 2", "nul", "{'a': 1}", '{"a":1}x', "\ufeff{}", "[1e999]",
     "[NaN, -Infinity]", '"\\ud800"', "\x00"],
)  # fmt: skip
def test_malformed_and_odd_input_matches_json(text: str) -> None:
    for data in (text, text.encode("utf-8", "surrogatepass")):
        try:
            expected: Any = json.loads(data)
        except ValueError as exc:
            with pytest.raises(type(exc)):
                _jsonlite.loads(data)
            continue
        got = _jsonlite.loads(data)
        assert _same(got, expected) or (
            isinstance(got, list) and all(math.isnan(x) or math.isinf(x) for x in got)
        )


def test_malformed_input_in_a_process_that_never_imported_json() -> None:
    """The accelerator's error path needs ``json.decoder`` already imported (it looks the
    error class up in ``sys.modules``); the hot path never imports it, so a corrupt state
    file must still come out as json's own ``ValueError``, in a fresh interpreter."""
    code = (
        "import sys\n"
        "from otel_cli_telemetry import _jsonlite\n"
        "assert 'json' not in sys.modules\n"
        "for data in (b'{consent: granted', b'{\"a\" 1}', b'[1,', b'x', bytes(range(256))):\n"
        "    try:\n"
        "        _jsonlite.loads(data)\n"
        "    except ValueError:\n"
        "        continue\n"
        "    raise SystemExit(f'accepted {data!r}')\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr


def test_a_value_json_cannot_encode_raises_json_s_error() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        _jsonlite.dumps({"x": object()})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        _jsonlite.dumps(loop)


def test_a_recording_run_does_not_import_the_json_package(tmp_path: Any) -> None:
    """What the module is for: the spool, history and state files are written and read
    without ``import json`` (a real recording run of the example CLI, endpoint set)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "XDG_STATE_HOME": str(tmp_path),
        "DEPLOYCTL_TELEMETRY": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    code = (
        "import runpy, sys; sys.argv = ['deployctl', 'stage', 'list']\n"
        "try:\n    runpy.run_path('examples/deploy/deployctl.py', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "import atexit; atexit._run_exitfuncs()\n"
        "print('json' in sys.modules, file=sys.stderr)"
    )
    for _ in range(2):  # the first run writes the state files; the second only reads them
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=True, timeout=60)
    assert result.stderr.strip().splitlines()[-1] == "False", result.stderr
    spooled = [p for p in tmp_path.rglob("*") if p.is_file() and "spool" in p.parts]
    assert spooled, sorted(str(p) for p in tmp_path.rglob("*"))
