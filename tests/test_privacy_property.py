"""Property: no secret planted in a CLI run reaches the collector or any file we write.

Each example runs real processes: ``leaky_app.py`` (click, typer or argparse) with generated
secrets in option values, positional arguments, environment variables (its own, and
``OTEL_RESOURCE_ATTRIBUTES``/``OTEL_SERVICE_NAME``), an exception's message, declared
attribute values (span, list, phase and metric point) and phase names; then the admin
``flush`` delivers the record to a local OTLP receiver through the real drainer code.

Checked for every secret: absent from every request body the receiver got, from the spool
file (inspected before delivery: the test holds the drainer lock so none starts), from the
local history, the state dir's other files, and the ``_LOG`` file.

Opaque secrets (random text) go where the SDK must never look (arguments, environment,
exception messages). Secrets with a recognisable shape (cloud keys, tokens, JWTs, private
keys, URL credentials, ``password=`` pairs, emails, IPs, the home path, the user name) go
into declared values and phase names, which the SDK keeps but must scrub.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_cli_telemetry.delivery.lock import DrainerLock

from apps._harness import APPS, app_state_dir, files_under
from otlp_receiver import OtlpHttpReceiver
from support import SRC

APP = "leakyapp"
ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64URL = ALNUM + "-_"
# Opaque secrets: printable, no quotes or backslashes (so a needle is also its JSON form).
OPAQUE_CHARS = ALNUM + "-_.:/@+=%!~#^*"


def _text(alphabet: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=low, max_size=high)


@dataclass(frozen=True)
class Planted:
    """Text to plant, and the parts of it that must never come out."""

    text: str
    needles: tuple[str, ...]


def opaque(tag: str) -> st.SearchStrategy[Planted]:
    """Random text with a unique tag (so it cannot occur by chance in a record)."""
    return _text(OPAQUE_CHARS, 6, 24).map(lambda s: Planted(f"Zq{tag}{s}", (f"Zq{tag}{s}",)))


def _octet() -> st.SearchStrategy[int]:
    return st.integers(11, 249)


def shaped(home: str, user: str) -> st.SearchStrategy[Planted]:
    """A secret of a shape the scrubber must recognise, with its distinctive parts."""
    aws = _text(UPPER_DIGITS, 16, 16).map(lambda s: Planted(f"AKIA{s}", (f"AKIA{s}",)))
    github = _text(ALNUM, 36, 40).map(lambda s: Planted(f"ghp_{s}", (s,)))
    gitlab = _text(ALNUM, 20, 30).map(lambda s: Planted(f"glpat-{s}", (s,)))
    slack = st.tuples(_text(string.digits, 10, 12), _text(ALNUM, 12, 24)).map(
        lambda t: Planted(f"xoxb-{t[0]}-{t[1]}", (f"{t[0]}-{t[1]}",))
    )
    stripe = _text(ALNUM, 16, 32).map(lambda s: Planted(f"sk_live_{s}", (s,)))
    google = _text(B64URL, 35, 35).map(lambda s: Planted(f"AIza{s}", (f"AIza{s}",)))
    jwt = st.tuples(_text(B64URL, 10, 30), _text(B64URL, 10, 30), _text(B64URL, 10, 40)).map(
        lambda t: Planted(f"eyJ{t[0]}.eyJ{t[1]}.{t[2]}", (f"eyJ{t[1]}",))
    )
    private_key = st.tuples(
        st.sampled_from(["", "RSA ", "EC ", "OPENSSH "]), _text(ALNUM, 40, 64)
    ).map(
        lambda t: Planted(
            f"-----BEGIN {t[0]}PRIVATE KEY-----\n{t[1]}\n-----END {t[0]}PRIVATE KEY-----", (t[1],)
        )
    )
    url = st.tuples(
        st.sampled_from(["https", "postgres", "redis", "ftp"]),
        _text(string.ascii_lowercase, 4, 8),
        _text(ALNUM, 10, 16),
        _text(string.ascii_lowercase, 3, 10),
    ).map(
        lambda t: Planted(f"{t[0]}://{t[1]}:{t[2]}@{t[3]}.example.com/db", (t[2], f"{t[1]}:{t[2]}"))
    )
    pair = st.tuples(
        st.sampled_from(["password", "passwd", "secret", "token", "api_key", "access_key"]),
        st.sampled_from(["=", ": ", "="]),
        _text(ALNUM, 10, 24),
    ).map(lambda t: Planted(f"{t[0]}{t[1]}{t[2]}", (t[2],)))
    email = st.tuples(
        _text(string.ascii_lowercase + string.digits, 3, 12),
        _text(string.ascii_lowercase, 3, 10),
        st.sampled_from(["com", "org", "net", "io", "dev"]),
    ).map(lambda t: Planted(f"{t[0]}@{t[1]}.{t[2]}", (f"{t[0]}@{t[1]}.{t[2]}",)))
    ipv4 = st.tuples(_octet(), _octet(), _octet(), _octet()).map(
        lambda t: Planted(".".join(map(str, t)), (".".join(map(str, t)),))
    )
    home_path = _text(ALNUM, 3, 12).map(lambda s: Planted(f"{home}/{s}/notes.txt", (home,)))
    user_name = st.just(Planted(f"by {user}", (user,)))
    return st.one_of(
        aws, github, gitlab, slack, stripe, google, jwt, private_key, url, pair, email, ipv4,
        home_path, user_name,
    )  # fmt: skip


@dataclass
class Case:
    """One generated run."""

    framework: str
    token: Planted
    positionals: list[Planted]
    env_secret: Planted
    resource_secret: Planted
    service_secret: Planted
    failure: Planted | None
    note: list[Planted]
    phase: Planted
    words: tuple[str, str]
    needles: list[str] = field(default_factory=list)


@st.composite
def cases(draw: st.DrawFn, home: str, user: str) -> Case:
    secret = shaped(home, user)
    case = Case(
        framework=draw(st.sampled_from(["click", "typer", "argparse"])),
        token=draw(st.one_of(opaque("TOK"), secret)),
        positionals=draw(st.lists(opaque("POS"), min_size=1, max_size=3)),
        env_secret=draw(opaque("ENV")),
        resource_secret=draw(opaque("RES")),
        service_secret=draw(opaque("SVC")),
        failure=draw(st.none() | opaque("EXC")),
        note=draw(st.lists(secret, min_size=1, max_size=3)),
        phase=draw(secret),
        words=draw(st.tuples(*[st.sampled_from(["", "deploy", "via", "from", "stage-2"])] * 2)),
    )
    for planted in (
        case.token, *case.positionals, case.env_secret, case.resource_secret,
        case.service_secret, *case.note, case.phase, *([case.failure] if case.failure else []),
    ):  # fmt: skip
        case.needles.extend(planted.needles)
    return case


def _found(data: bytes, needles: list[str]) -> list[str]:
    hits = []
    for needle in needles:
        forms = {needle.encode(), json.dumps(needle)[1:-1].encode()}
        if any(form in data for form in forms):
            hits.append(needle)
    return hits


# One home and user per test run: the scrubber must know them, and hypothesis draws them in.
# (Only named at import; created by the test and removed after the module.)
_BASE = Path(tempfile.gettempdir()) / f"otel-cli-telemetry-leaky-{os.getpid()}"
HOME = str(_BASE / "home-Kq7vX")
USER = "uzelwyndra"


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases(HOME, USER))
def test_no_planted_secret_reaches_the_receiver_or_disk(case: Case) -> None:
    Path(HOME).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ex-", dir=_BASE))
    log_file = work / "telemetry-log.jsonl"
    try:
        with OtlpHttpReceiver() as receiver:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": HOME,
                "USER": USER,
                "XDG_STATE_HOME": str(work / "state"),
                "PYTHONPATH": str(SRC),
                "PYTHONDONTWRITEBYTECODE": "1",
                "LANG": "C.UTF-8",
                "LEAKY_FRAMEWORK": case.framework,
                "LEAKY_ENV_SECRET": case.env_secret.text,
                "OTEL_RESOURCE_ATTRIBUTES": f"leak.attr={case.resource_secret.text}",
                "OTEL_SERVICE_NAME": case.service_secret.text,
                "LEAKYAPP_TELEMETRY": "1",
                "LEAKYAPP_TELEMETRY_LOG": str(log_file),
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            }
            note = " ".join(
                filter(None, [case.words[0], *(p.text for p in case.note), case.words[1]])
            )
            args = ["work", "--token", case.token.text, "--note", note, "--phase", case.phase.text]
            if case.failure is not None:
                args += ["--fail", case.failure.text]
            args += [p.text for p in case.positionals]
            root = app_state_dir(env, APP)

            lock = DrainerLock(str(root / "drainer.lock"))  # no drainer: the spool stays
            assert lock.acquire()
            try:
                run = subprocess.run(
                    [sys.executable, str(APPS / "leaky_app.py"), *args],
                    env=env,
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
                assert run.returncode == (1 if case.failure else 0), run.stderr
                spooled = list((root / "spool").iterdir())
                assert len(spooled) == 1
                for path in [*files_under(root), log_file]:
                    assert _found(path.read_bytes(), case.needles) == [], path
            finally:
                lock.release()

            flush = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "otel_cli_telemetry",
                    "--app",
                    APP,
                    "flush",
                    "--timeout",
                    "20",
                ],
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert flush.returncode == 0, flush.stdout + flush.stderr
            spans = receiver.spans()
            assert {s["name"] for s in spans} >= {f"{APP} work"}
            assert receiver.points("leaky.ops")
            for body in receiver.raw_bodies():
                assert _found(body, case.needles) == []
            for path in files_under(root):  # the delivery log, breaker, what is left
                assert _found(path.read_bytes(), case.needles) == [], path
    finally:
        shutil.rmtree(work, ignore_errors=True)


def teardown_module() -> None:
    shutil.rmtree(_BASE, ignore_errors=True)
