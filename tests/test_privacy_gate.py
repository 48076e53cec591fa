"""The privacy gate, checked at a real OTLP receiver (fail closed).

``leaky_app.py`` plants secrets everywhere an app could: declared and undeclared attributes
on the span, its phases and metric points, phase names, exception messages, arguments and
environment variables (``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME`` included).
Only built-in and declared keys may arrive, every string scrubbed, failures as ``error.type``.
Runs use CI mode, so delivery is in-process and complete when the process exits.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Any

import pytest

from otel_cli_telemetry.schema import (
    BUILTIN_METRIC_ATTRIBUTES,
    BUILTIN_RESOURCE_ATTRIBUTES,
    BUILTIN_SPAN_ATTRIBUTES,
)

from apps._harness import APPS
from otlp_receiver import OtlpHttpReceiver
from support import run_app

DECLARED = {
    "leaky.note", "leaky.tags", "leaky.count", "leaky.label", "leaky.ident", "leaky.mode",
    "leaky.version", "leaky.took", "leaky.ratio", "leaky.flag",
}  # fmt: skip
USER = "quintessa"


def _env(cli_env: dict[str, str], receiver: OtlpHttpReceiver, **extra: str) -> dict[str, str]:
    return {
        **cli_env,
        "CI": "1",
        "USER": USER,
        "LEAKYAPP_TELEMETRY": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        **extra,
    }


def _spans_by_name(receiver: OtlpHttpReceiver) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in receiver.spans()}


def _leaks(receiver: OtlpHttpReceiver, *needles: str) -> list[str]:
    bodies = receiver.raw_bodies()
    assert bodies, "nothing was delivered"
    return [n for n in needles if any(n.encode() in body for body in bodies)]


def test_only_built_in_and_declared_keys_arrive(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = _env(
            cli_env,
            receiver,
            OTEL_RESOURCE_ATTRIBUTES="leak.key=resvalue917,host.name=hostleak917,"
            "service.name=svcleak917,deployment.environment=envleak917",
            OTEL_SERVICE_NAME="svcname917",
            LEAKY_ENV_SECRET="envsecret917",
        )
        result = run_app(
            "leaky_app.py",
            [
                "work",
                "--token",
                "tok917secret",
                "--note",
                "plain note",
                "--phase",
                "ship",
                "pos917",
            ],
            env,
        )
        assert result.returncode == 0, result.stderr
        spans = receiver.spans()
        metrics = receiver.metrics()
    span_keys = set(BUILTIN_SPAN_ATTRIBUTES) | DECLARED
    # "inner.plain note" is not a name: phase() refused it, the app fell back to "rejected".
    assert {s["name"] for s in spans} == {"leakyapp work", "ship", "rejected"}
    for span in spans:
        assert set(span["attributes"]) <= span_keys
        assert set(span["resource"]) <= set(BUILTIN_RESOURCE_ATTRIBUTES)
        assert span["resource"]["service.name"] == "leakyapp"
    command = _spans_by_name(receiver)["leakyapp work"]
    attributes = command["attributes"]
    assert attributes["leaky.note"] == "plain note"
    assert attributes["leaky.label"] == attributes["leaky.ident"] == "plain note"
    assert attributes["leaky.mode"] == "<other>"
    assert attributes["leaky.version"] == "<invalid-version>"
    assert attributes["leaky.took"] == "<invalid-duration>"
    assert "leaky.ratio" not in attributes
    assert "leaky.flag" not in attributes
    assert "leaky.token" not in attributes
    # mode, version, took, ratio, flag, and the undeclared leaky.token and env.secret
    assert attributes["cli_telemetry.sdk.redacted"] >= 7
    assert set(_spans_by_name(receiver)["ship"]["attributes"]) == {"leaky.note"}
    assert {m["name"] for m in metrics} >= {"leaky.ops", "cli_telemetry.command.duration"}
    for metric in metrics:
        assert set(metric["resource"]) <= set(BUILTIN_RESOURCE_ATTRIBUTES)
        for point in metric["points"]:
            assert set(point["attributes"]) <= set(BUILTIN_METRIC_ATTRIBUTES) | DECLARED
    (ops,) = receiver.points("leaky.ops")
    assert ops["attributes"] == {"leaky.note": "plain note", "leaky.label": "plain note"}
    assert (
        _leaks(
            receiver,
            "resvalue917",
            "hostleak917",
            "svcleak917",
            "envleak917",
            "svcname917",
            "envsecret917",
            "tok917secret",
            "pos917",
            "leak.key",
        )
        == []
    )


def test_exception_yields_error_type_only(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = _env(cli_env, receiver, LEAKY_ENV_SECRET="envsecret318")
        result = run_app(
            "leaky_app.py",
            ["work", "--token", "tok318secret", "--fail", "kaboom318 at db", "item318"],
            env,
        )
        assert result.returncode == 1
        assert b"kaboom318" in result.stderr  # the app's own traceback is untouched
        spans = _spans_by_name(receiver)
    assert spans["leakyapp work"]["attributes"]["error.type"] == "RuntimeError"
    assert spans["leakyapp work"]["status_code"] == "ERROR"
    assert spans["work"]["attributes"]["error.type"] == "RuntimeError"
    for span in spans.values():
        assert span["events"] == []
        assert span["status_message"] in ("", None)
    assert (
        _leaks(receiver, "kaboom318", "tok318secret", "envsecret318", "item318", "Traceback") == []
    )


SECRETS = {
    # kind: (planted text, what must not arrive, placeholder expected in the note)
    "aws_access_key": ("key AKIAZ7Q3EXAMPLE4KEYX", "AKIAZ7Q3EXAMPLE4KEYX", "<aws-access-key>"),
    "aws_secret": (
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "<aws-secret-key>",
    ),
    "github_token": (
        "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "<github-token>",
    ),
    "jwt": (
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyMTIzIn0.c2lnbmF0dXJlX3ZhbHVl",
        "eyJzdWIiOiJ1c2VyMTIzIn0",
        "<jwt>",
    ),
    "private_key": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7s3cr3tK3yB0dyQ\n"
        "-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA7s3cr3tK3yB0dyQ",
        "<private-key>",
    ),
    "url_credentials": (
        "clone https://deploy:Pa55w0rdXyz@git.example.com/repo.git",
        "Pa55w0rdXyz",
        "<redacted>@git.example.com",
    ),
    "password_pair": ("db password=Hunter2Hunter2 ok", "Hunter2Hunter2", "password=<redacted>"),
    "email": ("mail jane.doe@example.org", "jane.doe@example.org", "<email>"),
    "ipv4": ("host 10.20.30.40 up", "10.20.30.40", "<ip>"),
    "ipv6": ("host 2001:db8:85a3::8a2e:370:7334 up", "2001:db8:85a3::8a2e:370:7334", "<ip>"),
    "slack": ("xoxb-1234567890-abcdefghijKL", "1234567890-abcdefghijKL", "<slack-token>"),
    "stripe": ("sk_live_abcdefghijklmnop12", "abcdefghijklmnop12", "<stripe-key>"),
    "user": (f"owner {USER} here", USER, "<user>"),
    "home": ("{home}/projects/plan.txt", "{home}", "~/projects/plan.txt"),
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_every_string_value_is_scrubbed(cli_env: dict[str, str], kind: str) -> None:
    planted, needle, placeholder = (s.format(home=cli_env["HOME"]) for s in SECRETS[kind])
    with OtlpHttpReceiver() as receiver:
        env = _env(cli_env, receiver)
        result = run_app("leaky_app.py", ["work", "--note", planted, "--phase", planted], env)
        assert result.returncode == 0, result.stderr
        spans = _spans_by_name(receiver)
        (ops,) = receiver.points("leaky.ops")
    note = spans["leakyapp work"]["attributes"]["leaky.note"]
    assert placeholder in note
    assert spans["leakyapp work"]["attributes"]["leaky.tags"][0] == note
    assert ops["attributes"]["leaky.note"] == note
    assert _leaks(receiver, needle) == []


def test_host_name_is_scrubbed(cli_env: dict[str, str]) -> None:
    """The host name only the client knows: set in a private UTS namespace for this run."""
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-u", "true"], capture_output=True, check=False).returncode
    ):
        pytest.skip("needs a UTS namespace (unshare -u) to give the CLI a known host name")
    host = "buildbox-quartz"
    with OtlpHttpReceiver() as receiver:
        env = _env(cli_env, receiver)
        note = f"built on {host}.corp.example and {host}"
        result = subprocess.run(
            [
                "unshare", "-u", "sh", "-c", 'hostname "$0" && exec "$@"', host,
                sys.executable, str(APPS / "leaky_app.py"), "work", "--note", note,
            ],
            env=env,
            capture_output=True,
            check=False,
            timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        spans = _spans_by_name(receiver)
    # The machine's own name goes, whole or as the first label of a longer name.
    assert spans["leakyapp work"]["attributes"]["leaky.note"] == "built on <host> and <host>"
    assert _leaks(receiver, host, "buildbox") == []


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("upload", "upload"),
        ("deploy.stacks", "deploy.stacks"),
        ("stage: build/upload", "rejected"),
        ("step AKIAZ7Q3EXAMPLE4KEYX", "rejected"),
        ("AKIAZ7Q3EXAMPLE4KEYX", "rejected"),
        ("ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "rejected"),
        ("user=alice@example.org", "rejected"),
        ("query?token=abc123secretvalue", "rejected"),
        ("line\nbreak", "rejected"),
        ("x" * 200, "rejected"),
        ("naïve", "rejected"),
    ],
)
def test_phase_names_are_static_names(cli_env: dict[str, str], phase: str, expected: str) -> None:
    """phase() refuses a name outside the grammar or that looks like a secret (ValueError,
    which leaky_app catches to use ``rejected``); nothing of the refused name arrives."""
    with OtlpHttpReceiver() as receiver:
        result = run_app("leaky_app.py", ["work", "--phase", phase], _env(cli_env, receiver))
        assert result.returncode == 0, result.stderr
        names = {s["name"] for s in receiver.spans()}
        if expected == "rejected":
            assert _leaks(receiver, phase) == []
    assert names == {"leakyapp work", expected, "inner"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("deploy", "deploy"),
        ("stage new", "stage new"),
        ("ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "<redacted>"),
        ("deploy /home/someone/x", "<redacted>"),  # a path with a bad part goes whole
        ("npm_Zx8Qw7Er6Ty5Ui4Op3As2Df1Gh0Jk9Lz8Xc7Vb", "<redacted>"),
        (f"run {USER}", "<redacted>"),
    ],
)
def test_generic_command_names_are_dynamic(
    cli_env: dict[str, str], name: str, expected: str
) -> None:
    """command(name) may carry anything from the command line: bad components are replaced."""
    with OtlpHttpReceiver() as receiver:
        env = _env(cli_env, receiver, LEAKY_FRAMEWORK="generic")
        result = run_app("leaky_app.py", [name], env)
        assert result.returncode == 0, result.stderr
        spans = _spans_by_name(receiver)
        (duration,) = receiver.points("cli_telemetry.command.duration")
        if expected != name:
            assert _leaks(receiver, *name.split()[1:] or [name]) == []
    span = spans[f"leakyapp {expected}"]
    assert span["attributes"]["cli_telemetry.command"] == expected
    assert duration["attributes"]["cli_telemetry.command"] == expected
    if expected != name:
        assert span["attributes"]["cli_telemetry.sdk.redacted"] >= 1
