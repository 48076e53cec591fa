"""Zero leaks of a generated corpus of secrets and personal data, through every channel.

The corpus (``secret_corpus.py``) is built from the formats vendors and standards publish,
not from our rules. It is planted:

- directly into the scrubber, every kind of field, static names (which must be refused) and
  dynamic names (which must be replaced);
- through real processes: ``apps/corpus_app.py`` plants every sample as a command name, as
  the value of a declared field of every kind (span, phase and metric-point attributes), as
  a metric description, in an exception's message, and offers it as a phase name, a metric
  name and a unit; the samples also sit in argv, in the environment and in the name of the
  working directory, and a few are passed as ``init(version=)``;
- through ``opentelemetry-instrument`` with samples in ``OTEL_SERVICE_NAME`` and
  ``OTEL_RESOURCE_ATTRIBUTES``.

Checked: every request body a real OTLP receiver on loopback got, and every file the SDK
wrote (spool, history, state, schema, delivery log) plus the ``_TELEMETRY_LOG`` file.

``NORMAL_VALUES`` is the false-positive corpus: it must come out unchanged.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_cli_telemetry.privacy import _grammar, kinds, rules
from otel_cli_telemetry.privacy.kinds import DROP, Redactor
from otel_cli_telemetry.privacy.scrub import Scrubber
from otel_cli_telemetry.schema import KINDS, Field
from secret_corpus import FORMATS, NORMAL_VALUES, Sample, corpus

from apps._harness import APPS, app_state_dir, files_under
from otlp_receiver import OtlpHttpReceiver
from support import SRC

SAMPLES = corpus()
PATTERNS_ONLY = Scrubber(None, None, None)
VENDOR_CATEGORIES = {
    "cloud", "vcs", "ci", "registry", "payment", "messaging", "ai", "observability",
    "database", "secrets-manager", "saas",
}  # fmt: skip
ALL_KINDS = [
    Field(kind, "x", values=["a", "b"] if kind == "enum" else ()) for kind in KINDS
] + [Field("identifier", "x", implicit=True), Field("text", "x", many=True)]


def _found(data: bytes, needles: list[str]) -> list[str]:
    """The needles in ``data``, as is or JSON-escaped."""
    hits = []
    for needle in needles:
        forms = {needle.encode(), json.dumps(needle)[1:-1].encode()}
        if any(form in data for form in forms):
            hits.append(needle)
    return hits


def _leaks_in(value: Any, sample: Sample) -> list[str]:
    text = json.dumps(value) if not isinstance(value, str) else value
    return [n for n in sample.needles if n in text or json.dumps(n)[1:-1] in text]


# --- the corpus itself -----------------------------------------------------------------------


def test_the_corpus_is_broad() -> None:
    assert len(SAMPLES) >= 300
    vendor_formats = {name for name, category, _ in FORMATS if category in VENDOR_CATEGORIES}
    assert len(vendor_formats) >= 150
    assert {s.category for s in SAMPLES} >= VENDOR_CATEGORIES | {"pii", "generic", "private-key"}
    assert len({s.text for s in SAMPLES}) == len(SAMPLES)


def test_the_rule_file_is_broad() -> None:
    document = json.loads(Path(rules.RULES_FILE).read_text(encoding="utf-8"))
    vendor = [r for r in document["rules"] if r["category"] in VENDOR_CATEGORIES]
    assert len(vendor) >= 150
    assert {r["category"] for r in vendor} == VENDOR_CATEGORIES
    for rule in document["rules"]:
        assert rule["source"], rule["id"]
        assert rule["placeholder"].startswith("<"), rule["id"]
        assert all(k == k.lower() for k in rule["keywords"]), rule["id"]


# --- in process: scrubber, kinds, names ---------------------------------------------------------


def test_text_scrubbing_removes_every_sample() -> None:
    leaks = {s.text: _leaks_in(PATTERNS_ONLY.scrub(s.text), s) for s in SAMPLES}
    assert {text: found for text, found in leaks.items() if found} == {}


def test_text_scrubbing_removes_samples_inside_sentences() -> None:
    leaks = {}
    for sample in SAMPLES:
        text = f"deploy failed: {sample.text} (see the log)"
        out = PATTERNS_ONLY.scrub(text)
        if _leaks_in(out, sample):
            leaks[sample.text] = out
    assert leaks == {}


@pytest.mark.parametrize("field", ALL_KINDS, ids=repr)
def test_no_kind_lets_a_sample_through(field: Field) -> None:
    redactor = Redactor(PATTERNS_ONLY.scrub)
    leaks = {}
    for sample in SAMPLES:
        value: Any = [sample.text] if field.many else sample.text
        out = redactor.value(field, value)
        if out is not DROP and _leaks_in(out, sample):
            leaks[sample.text] = out
    assert leaks == {}
    assert redactor.count >= len(SAMPLES) if field.kind != "text" else redactor.count > 0


def test_static_names_refuse_every_sample() -> None:
    accepted = [s.text for s in SAMPLES if kinds.name_problem(s.text) is None]
    assert accepted == []
    for sample in SAMPLES:
        with pytest.raises(ValueError) as caught:
            kinds.check_static_name("phase name", sample.text)
        if "looks like a secret" in str(caught.value):
            assert _leaks_in(str(caught.value), sample) == []


def test_bare_tokens_that_fit_the_names_grammar_are_refused() -> None:
    """A token is a valid-looking name (``ghp_...`` fits a naive grammar): still refused."""
    fitting = [s for s in SAMPLES if kinds.fits_name(s.text)]
    assert len(fitting) >= 100
    assert [s.text for s in fitting if kinds.secret_finding(s.text) is None] == []


def test_dynamic_names_replace_every_sample() -> None:
    redactor = Redactor(PATTERNS_ONLY.scrub)
    assert {s.text for s in SAMPLES if redactor.name(s.text) != "<redacted>"} == set()
    assert redactor.count == len(SAMPLES)


def test_versions_replace_every_sample() -> None:
    assert {s.text for s in SAMPLES if kinds.safe_version(s.text) != "<invalid-version>"} == set()


# --- the false-positive corpus ------------------------------------------------------------------


def test_normal_values_pass_scrubbing_unchanged() -> None:
    assert {v: PATTERNS_ONLY.scrub(v) for v in NORMAL_VALUES if PATTERNS_ONLY.scrub(v) != v} == {}
    assert [v for v in NORMAL_VALUES if rules.has_token(v)] == []


def test_normal_values_pass_their_kinds() -> None:
    redactor = Redactor(PATTERNS_ONLY.scrub)
    identifiers = [v for v in NORMAL_VALUES if kinds.fits_identifier(v)]
    assert len(identifiers) >= 80
    assert [v for v in identifiers if redactor.identifier(v) != v] == []
    names = [v for v in NORMAL_VALUES if kinds.fits_name(v)]
    assert len(names) >= 40
    assert [v for v in names if kinds.name_problem(v) is not None] == []
    versions = [v for v in NORMAL_VALUES if kinds.fits_version(v)]
    assert len(versions) >= 14
    assert [v for v in versions if kinds.safe_version(v) != v] == []
    assert redactor.count == 0


def test_entropy_check_on_random_tokens_and_words() -> None:
    """The catch-all flags random tokens of unknown formats and keeps word-like runs."""
    import random
    import string

    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits
    tokens = [
        "".join(rng.choice(alphabet) for _ in range(n)) for n in (24, 32, 40) for _ in range(200)
    ]
    caught = sum(rules.has_token(t) for t in tokens)
    assert caught / len(tokens) >= 0.97
    words = [
        "opentelemetry-instrumentation-requests", "AbstractSingletonProxyFactoryBean",
        "/usr/lib/python3.11/site-packages/otel_cli_telemetry/privacy",
        "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl", "2024-12-02T06:42:49.123456Z",
        "kernel-6.8.0-1014-azure-x86_64", "s3://my-bucket/releases/v2.3.1/app.tar.gz",
    ]  # fmt: skip
    assert [w for w in words if rules.has_token(w)] == []
    assert math.isfinite(rules._entropy("ab"))


# --- real processes: every channel, the wire and every file -------------------------------------


def _env(tmp: Path, receiver: OtlpHttpReceiver, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp / "home"),
        "USER": "corpususer",
        "XDG_STATE_HOME": str(tmp / "state"),
        "PYTHONPATH": str(SRC),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        "CI": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        **extra,
    }


def _all_files(env: dict[str, str], app: str, *extra: Path) -> list[Path]:
    root = app_state_dir(env, app)
    return [*(files_under(root) if root.exists() else []), *[p for p in extra if p.exists()]]


def test_every_channel_of_a_real_run_leaks_nothing(tmp_path: Path) -> None:
    corpus_file = tmp_path / "corpus.json"
    corpus_file.write_text(json.dumps([s.text for s in SAMPLES]))
    needles = sorted({n for s in SAMPLES for n in s.needles})
    cwd_sample = next(s for s in SAMPLES if s.format == "npm")
    cwd = tmp_path / f"work-{cwd_sample.text}"
    cwd.mkdir()
    log_file = tmp_path / "corpus-log.jsonl"
    (tmp_path / "home").mkdir()
    with OtlpHttpReceiver() as receiver:
        env = _env(
            tmp_path,
            receiver,
            CORPUS_FILE=str(corpus_file),
            CORPUSAPP_TELEMETRY="1",
            CORPUSAPP_TELEMETRY_LOG=str(log_file),
            **{f"CORPUS_ENV_{i}": s.text for i, s in enumerate(SAMPLES[:200])},
        )
        argv = [s.text for s in SAMPLES[200:400]]
        run = subprocess.run(
            [sys.executable, str(APPS / "corpus_app.py"), *argv],
            env=env,
            cwd=cwd,
            capture_output=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.decode().strip() == f"refused {3 * len(SAMPLES)}"
        spans = receiver.spans()
        bodies = receiver.raw_bodies()
    commands = [s for s in spans if s["name"].startswith("corpusapp")]
    assert len(commands) == len(SAMPLES)  # every record arrived
    assert {s["attributes"]["cli_telemetry.command"] for s in commands} == {"<redacted>"}
    assert all(s["attributes"]["cli_telemetry.sdk.redacted"] >= 8 for s in commands)
    wire = [n for n in needles if any(_found(body, [n]) for body in bodies)]
    assert wire == []
    for path in _all_files(env, "corpusapp", log_file):
        assert _found(path.read_bytes(), needles) == [], path
    assert log_file.stat().st_size > 0


@pytest.mark.parametrize(
    "sample",
    [next(s for s in SAMPLES if s.category == c) for c in sorted({s.category for s in SAMPLES})],
    ids=lambda s: s.format,
)
def test_init_version_is_never_stored_or_sent_raw(tmp_path: Path, sample: Sample) -> None:
    corpus_file = tmp_path / "corpus.json"
    corpus_file.write_text(json.dumps(["deploy"]))
    (tmp_path / "home").mkdir()
    with OtlpHttpReceiver() as receiver:
        env = _env(
            tmp_path,
            receiver,
            CORPUS_FILE=str(corpus_file),
            CORPUS_VERSION=sample.text,
            CORPUSAPP_TELEMETRY="1",
        )
        run = subprocess.run(
            [sys.executable, str(APPS / "corpus_app.py")],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        spans = receiver.spans()
        bodies = receiver.raw_bodies()
    assert {s["resource"]["service.version"] for s in spans} == {"<invalid-version>"}
    assert [n for n in sample.needles if any(_found(b, [n]) for b in bodies)] == []
    schema_file = app_state_dir(env, "corpusapp") / "schema.json"
    assert json.loads(schema_file.read_text())["app_version"] == "<invalid-version>"
    for path in _all_files(env, "corpusapp"):
        assert _found(path.read_bytes(), list(sample.needles)) == [], path


PLAIN_APP = """
import argparse
parser = argparse.ArgumentParser(prog="plainapp")
sub = parser.add_subparsers(dest="command", required=True)
sub.add_parser("work")
parser.parse_args()
print("done")
"""


@pytest.mark.parametrize("category", ["vcs", "ai", "cloud", "pii", "database", "generic"])
def test_opentelemetry_instrument_resource_and_service_name(tmp_path: Path, category: str) -> None:
    """Samples in OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES under opentelemetry-instrument."""
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    if not instrument.exists():
        pytest.skip("opentelemetry-instrument is not installed in this environment")
    picked = [s for s in SAMPLES if s.category == category][:3]
    script = tmp_path / "plainapp.py"
    script.write_text(PLAIN_APP)
    (tmp_path / "home").mkdir()
    needles = sorted({n for s in picked for n in s.needles})
    with OtlpHttpReceiver() as receiver:
        env = _env(
            tmp_path,
            receiver,
            OTEL_SERVICE_NAME=picked[0].text,
            OTEL_RESOURCE_ATTRIBUTES=",".join(
                [f"service.version={picked[1].text}", f"deployment.environment={picked[2].text}"]
            ).replace("%", "%25"),
        )
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        run = subprocess.run(
            [str(instrument), sys.executable, str(script), "work"],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout == b"done\n"
        spans = receiver.spans()
        bodies = receiver.raw_bodies()
    assert spans, "nothing was delivered"
    assert [n for n in needles if any(_found(b, [n]) for b in bodies)] == []
    state_root = Path(env["XDG_STATE_HOME"])
    for path in state_root.rglob("*"):
        assert _found(str(path).encode(), needles) == [], path
        if path.is_file():
            assert _found(path.read_bytes(), needles) == [], path


# --- the plain-Python grammars agree with the rules.json patterns ------------------------------


@pytest.mark.parametrize(
    ("check", "pattern", "max_length"),
    [
        (kinds.fits_name, _grammar.NAMES["pattern"], _grammar.NAMES["max_length"]),
        (
            kinds.fits_identifier,
            _grammar.KINDS["identifier"]["pattern"],
            _grammar.KINDS["identifier"]["max_length"],
        ),
        (
            kinds.fits_version,
            _grammar.KINDS["version"]["pattern"],
            _grammar.KINDS["version"]["max_length"],
        ),
    ],
    ids=["names", "identifier", "version"],
)
def test_string_grammars_match_the_shared_patterns(
    check: Any, pattern: str, max_length: int
) -> None:
    import random
    import re

    regex = re.compile(pattern, re.ASCII)
    rng = random.Random(11)
    alphabet = "aZ09" * 3 + ".-+_~/ " * 2 + "vé:"
    values = [s.text for s in SAMPLES] + list(NORMAL_VALUES) + ["unknown", "", "-", "--x"]
    values += [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 70))) for _ in range(20000)
    ]
    mismatches = [
        v for v in values if check(v) != (regex.match(v) is not None and len(v) <= max_length)
    ]
    assert mismatches == []
