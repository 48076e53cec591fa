"""Tests for privacy.scrub: each secret pattern, machine values, and the scrubber's guarantees.

Token-shaped test values are assembled at run time ("sk_" + "live_" ...) so that no literal
in this file looks like a real credential to a secret scanner.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from otel_cli_telemetry.privacy import rules as rules_module
from otel_cli_telemetry.privacy import scrub as scrub_module
from otel_cli_telemetry.privacy.scrub import (
    MAX_SCRUB_LENGTH,
    PLACEHOLDERS,
    REDACTED,
    SECRET_PATTERNS,
    Scrubber,
    default_scrubber,
    scrub_value,
)

PATTERNS_ONLY = Scrubber(None, None, None)
ALICE = Scrubber("/home/alice", "alice", "alice-laptop.example.com")
WINDOWS = Scrubber("C:\\Users\\Alice", "Alice", "DESKTOP-AB12CD")

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: dict[str, object], payload: dict[str, object], signature: bytes) -> str:
    return ".".join(
        (
            _b64url(json.dumps(header).encode()),
            _b64url(json.dumps(payload).encode()),
            _b64url(signature),
        )
    )


AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
GOOGLE_KEY = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
GITHUB_PAT = "ghp_" + "R2d2C3poR2d2C3poR2d2C3poR2d2C3po1234"
GITHUB_FINE = "github_pat_" + "11ABCDEFG0123456789abc" + "_" + "x" * 59
GITLAB_PAT = "glpat-" + "Ab3dEf6hIj9kLm2nOp5q"
SLACK_BOT = "xox" + "b-1234567890123-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE_LIVE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_RESTRICTED = "rk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_TEST = "sk_" + "test_" + "4eC39HqLyjWDarjtT1zdp7dc"
JWT = _jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "1234567890", "name": "Ann"}, b"signature!")
PEM = (
    "-----BEGIN " + "RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END " + "RSA PRIVATE KEY-----"
)


# --- each pattern: realistic positives ------------------------------------------------------


POSITIVES: list[tuple[str, str]] = [
    (AWS_KEY_ID, "<aws-access-key>"),
    ("export AWS_ACCESS_KEY_ID=" + AWS_KEY_ID, "export AWS_ACCESS_KEY_ID=<aws-access-key>"),
    ("ASIA" + "Y34FZKBOKMUTVV7A", "<aws-access-key>"),
    ("aws_secret_access_key = " + AWS_SECRET, "aws_secret_access_key = <aws-secret-key>"),
    (
        '"AWS_SECRET_ACCESS_KEY": "' + AWS_SECRET + '"',
        '"AWS_SECRET_ACCESS_KEY": "<aws-secret-key>"',
    ),
    ("key=" + GOOGLE_KEY, "key=<google-api-key>"),
    (
        "https://maps.googleapis.com/x?key=" + GOOGLE_KEY,
        "https://maps.googleapis.com/x?key=<google-api-key>",
    ),
    (GITHUB_PAT, "<github-token>"),
    ("gho_" + "a" * 36, "<github-token>"),
    ("ghu_" + "B" * 36, "<github-token>"),
    ("ghs_" + "1" * 36, "<github-token>"),
    ("ghr_" + "z" * 40, "<github-token>"),
    (GITHUB_FINE, "<github-token>"),
    (
        "git clone https://" + GITHUB_PAT + "@github.com/o/r",
        "git clone https://<github-token>@github.com/o/r",
    ),
    (GITLAB_PAT, "<gitlab-token>"),
    (SLACK_BOT, "<slack-token>"),
    ("xox" + "p-1234-5678-abcdefabcdef", "<slack-token>"),
    (STRIPE_LIVE, "<stripe-key>"),
    (STRIPE_RESTRICTED, "<stripe-key>"),
    (STRIPE_TEST, "<stripe-key>"),
    ("Authorization: Bearer " + "abc.DEF-123_456~789/+=", "Authorization: Bearer <redacted>"),
    ("authorization=Basic " + "dXNlcjpwYXNzd29yZA==", "authorization=Basic <redacted>"),
    (
        "curl -H 'Authorization: token " + GITHUB_PAT + "'",
        "curl -H 'Authorization: token <github-token>'",
    ),
    ("bearer " + "0123456789abcdefXYZ", "bearer <redacted>"),
    (JWT, "<jwt>"),
    ("id_token=" + JWT + "&state=1", "id_token=<jwt>&state=1"),
    (JWT.rsplit(".", 1)[0], "<jwt>"),  # cut off after the payload
    (PEM, "<private-key>"),
    ("key: " + PEM.replace("RSA ", "") + " done", "key: <private-key> done"),
    ("-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk", "<private-key>"),
    (
        "-----BEGIN " + "PGP PRIVATE KEY BLOCK-----\nxx\n-----END PGP PRIVATE KEY BLOCK-----",
        "<private-key>",
    ),
    ("https://bob:hunter2@example.com/path", "https://<redacted>@example.com/path"),
    ("postgres://app:s3cr3t@db.internal:5432/prod", "postgres://<redacted>@<host>:5432/prod"),
    ("ssh://git@example.org/repo.git", "ssh://<redacted>@example.org/repo.git"),
    ("https://u:p@ss@example.com", "https://<redacted>@example.com"),
    ("password=hunter2", "password=<redacted>"),
    ("--password=hunter2 --user=x", "--password=<redacted> --user=x"),
    ("DB_PASSWORD: s3cr3t", "DB_PASSWORD: <redacted>"),
    ('{"password": "hunter 2", "user": "x"}', '{"password": <redacted>, "user": "x"}'),
    ("passwd='x y z'", "passwd=<redacted>"),
    ("client_secret=abc123&grant=1", "client_secret=<redacted>&grant=1"),
    ("api_key=abc123", "api_key=<redacted>"),
    ("apikey: abc123", "apikey: <redacted>"),
    ("X-API-KEY=abc123", "X-API-KEY=<redacted>"),
    ("token_file=/tmp/t", "token_file=<redacted>"),
    ("AccountKey=abc+def==;EndpointSuffix=core", "AccountKey=<redacted>;EndpointSuffix=core"),
    ("credentials=abc", "credentials=<redacted>"),
    ("mail alice.smith+tag@example.co.uk now", "mail <email> now"),
    ("<ann@example.org>", "<<email>>"),
    ("git@github.com:org/repo.git", "<email>:org/repo.git"),
    ("mac 00:1a:2b:3c:4d:5e", "mac <mac>"),
    ("00-1A-2B-3C-4D-5E", "<mac>"),
    ("192.168.1.10", "<ip>"),
    ("connect to 10.0.0.1:8080 failed", "connect to <ip>:8080 failed"),
    ("from 8.8.8.8.", "from <ip>."),
    ("10.0.0.1-10.0.0.255", "<ip>"),
    ("[255.255.255.255]", "[<ip>]"),
    ("2001:db8:85a3::8a2e:370:7334", "<ip>"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "<ip>"),
    ("fe80::1ff:fe23:4567:890a%eth0", "<ip>%eth0"),
    ("[2001:db8::1]:443", "[<ip>]:443"),
    ("2001:db8:1234:5678::/64", "<ip>/64"),
    ("::ffff:c000:280", "<ip>"),
    ("::ffff:192.0.2.1", "::ffff:<ip>"),
]


@pytest.mark.parametrize(("value", "expected"), POSITIVES)
def test_pattern_positives(value: str, expected: str) -> None:
    assert PATTERNS_ONLY.scrub(value) == expected


# --- near misses: ordinary values must come out unchanged ------------------------------------


NEGATIVES: list[str] = [
    "",
    "deploy",
    "build",
    "--force",
    "--password",
    "ValueError",
    "requests.exceptions.ConnectionError",
    "botocore.exceptions.NoCredentialsError",
    "deployctl deploy",
    "stage new",
    "1.4.2",
    "v2.0.0-rc.1+build.5",
    "1.2.3-alpha.10",
    "10.0.19045",
    "10.0.22631.2861",
    "v1.2.3.4",
    "1.2.3.4-beta",
    "5.15.153.1-microsoft-standard-WSL2",
    "6.8.0-1017-azure",
    "1h30m",
    "12:30:45",
    "00:00:01.500",
    "2024-01-02T03:04:05Z",
    "2024-01-02",
    "3f2b8c1e-9d4a-4f6b-8e2a-1c3d5e7f9a0b",  # a uuid4 (the installation id)
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",  # a SHA-1
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # a SHA-256
    "std::vector",
    "std::io::Read",
    "A::foo",
    "::1",
    "Class::add",
    "max_tokens=4096",
    "tokenizer=bert-base-uncased",
    "passwordless=true",
    "author=someone",
    "AKIA",
    "AKIA-short",
    "ghp_short",
    "sk_live",
    "Bearer tokens",
    "bearer authn",
    "eyJ",
    "@types/node",
    "express@4.18.2",
    "user@localhost",
    "https://example.com/path?x=1",
    "file:///tmp/x.txt",
    "C:\\Program Files\\App",
    "/usr/local/bin/deployctl",
    "linux",
    "x86_64",
    "cpython",
    "CI=true",
    "key_count=3",
    "aws_region=us-east-1",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "12-30-45",
]


@pytest.mark.parametrize("value", NEGATIVES)
def test_ordinary_values_unchanged(value: str) -> None:
    assert PATTERNS_ONLY.scrub(value) == value
    assert ALICE.scrub(value) == value


# --- home, user, host ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/home/alice", "~"),
        ("/home/alice/projects/x", "~/projects/x"),
        ("--config=/home/alice/.cfg", "--config=~/.cfg"),
        ("PYTHONPATH=/opt/x:/home/alice/lib", "PYTHONPATH=/opt/x:~/lib"),
        ("open '/home/alice/a b.txt'", "open '~/a b.txt'"),
        ("file:///home/alice/x", "file://~/x"),
        ("~alice/notes", "~/notes"),
        ("/HOME/ALICE/x", "~/x"),
        ("/home/alicex", "/home/<user>"),  # another user's home: the rules take it
        ("/home/alice-old/x", "/home/<user>/x"),
        ("/mnt/home/alice/x", "/mnt/home/<user>/x"),
        ("alice", "<user>"),
        ("ALICE", "<user>"),
        ("by alice.", "by <user>."),
        ("alice_dev", "<user>_dev"),
        ("malice", "malice"),
        ("alices", "alices"),
        ("alice-laptop", "<host>"),
        ("Alice-Laptop.example.com:8080", "<host>:8080"),
        ("http://alice-laptop.local/x", "http://<host>/x"),  # an internal host name rule
        ("alice-laptops", "<user>-laptops"),
        ("<user> and <host>", "<user> and <host>"),
    ],
)
def test_home_user_host(value: str, expected: str) -> None:
    assert ALICE.scrub(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("C:\\Users\\Alice\\AppData\\Local", "~\\AppData\\Local"),
        ("c:\\users\\alice", "~"),
        ("C:/Users/Alice/x", "~/x"),
        ("C:\\\\Users\\\\Alice\\\\x", "~\\\\x"),  # as escaped in JSON or a repr
        ("/c/Users/Alice/x", "~/x"),
        ("/mnt/c/Users/Alice/x", "~/x"),
        ("D:\\Users\\Alice\\x", "D:\\Users\\<user>\\x"),
        ("desktop-ab12cd", "<host>"),
    ],
)
def test_windows_home(value: str, expected: str) -> None:
    assert WINDOWS.scrub(value) == expected


def test_extra_homes_and_non_ascii_names() -> None:
    scrubber = Scrubber("/home/jörg", "Jörg", "jörgs-box", extra_homes=["/var/home/jörg"])
    assert scrubber.scrub("/var/home/jörg/x and /home/jörg/y") == "~/x and ~/y"
    assert scrubber.scrub("JÖRG wrote to jörgs-box") == "<user> wrote to <host>"


def test_short_and_generic_names_are_left_alone() -> None:
    scrubber = Scrubber("/home/runner", "runner", "localhost")
    assert scrubber.scrub("runner localhost /home/runner/work") == "runner localhost ~/work"
    assert Scrubber(None, "al", "ab").scrub("al ab") == "al ab"
    assert Scrubber(None, "root", "ubuntu").scrub("--runtime node root ubuntu-22.04") == (
        "--runtime node root ubuntu-22.04"
    )


def test_root_home_is_never_a_prefix_of_everything() -> None:
    assert Scrubber("/", None, None).scrub("/usr/bin/x") == "/usr/bin/x"
    assert Scrubber("C:\\", None, None).scrub("C:\\Windows") == "C:\\Windows"


def test_ip_host_name_is_left_to_the_patterns() -> None:
    assert Scrubber(None, None, "10.1.2.3").scrub("10.1.2.3") == "<ip>"


def test_names_equal_to_placeholder_words_keep_placeholders_intact() -> None:
    scrubber = Scrubber(None, "email", "redacted-host")
    assert scrubber.scrub("mail me at x@example.com, email") == "mail me at <email>, <user>"
    assert scrubber.scrub("password=hunter2 on redacted-host") == "password=<redacted> on <host>"
    user_named_user = Scrubber(None, "access", "host")
    assert user_named_user.scrub(AWS_KEY_ID + " access") == "<aws-access-key> <user>"


def test_for_this_machine_uses_the_real_home_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "zed-tester")
    scrubber = Scrubber.for_this_machine()
    home = os.path.expanduser("~")
    if home not in ("/", "~"):
        assert scrubber.scrub(home + "/x") == "~/x"
    assert scrubber.scrub("by zed-tester") == "by <user>"


def test_for_this_machine_survives_a_failing_user_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    pwd = pytest.importorskip("pwd")
    for name in ("USER", "LOGNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def broken(uid: int) -> object:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", broken)
    assert Scrubber.for_this_machine().scrub("deploy") == "deploy"


def test_for_this_machine_reads_the_password_database_without_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pwd = pytest.importorskip("pwd")
    for name in ("USER", "LOGNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    entry = type("Entry", (), {"pw_name": "quinn-test"})()
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: entry)
    assert Scrubber.for_this_machine().scrub("quinn-test") == "<user>"


def test_hostname_comes_from_socket_when_already_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "workstation-42")
    assert scrub_module._hostname() == "workstation-42"
    monkeypatch.setattr(socket, "gethostname", lambda: 1 / 0)
    assert scrub_module._hostname() is None


def test_default_scrubber_is_built_once() -> None:
    assert default_scrubber() is default_scrubber()


def test_scrub_value() -> None:
    assert scrub_value("deploy") == "deploy"
    assert scrub_value("x " + AWS_KEY_ID, PATTERNS_ONLY) == "x <aws-access-key>"
    assert scrub_value(["a", AWS_KEY_ID], PATTERNS_ONLY) == ["a", "<aws-access-key>"]
    assert scrub_value(("a@example.com", 3, True), PATTERNS_ONLY) == ["<email>", 3, True]
    for other in (3, 2.5, True, False, None):
        assert scrub_value(other) is other


# --- bounded cost, truncation, never raising ---------------------------------------------------


def test_long_values_are_truncated_before_scanning() -> None:
    out = PATTERNS_ONLY.scrub("word " * 100_000)
    assert len(out) <= MAX_SCRUB_LENGTH
    assert out.startswith("word word")


def test_a_token_cut_by_truncation_is_dropped_not_kept_in_part() -> None:
    filler = "a " * 2040  # 4080 characters; the token straddles the limit
    out = PATTERNS_ONLY.scrub(filler + GITHUB_PAT + " tail")
    assert out == filler
    assert "ghp_" not in out


def test_a_single_huge_word_is_cut_hard() -> None:
    assert PATTERNS_ONLY.scrub("x" * 10_000) == "x" * MAX_SCRUB_LENGTH


def test_growth_past_the_limit_is_truncated_again() -> None:
    scrubber = Scrubber(None, "bob", None)
    value = "bob " * 1024  # 4096 characters, each "bob" becomes "<user>"
    out = scrubber.scrub(value)
    assert len(out) <= MAX_SCRUB_LENGTH
    assert "bob" not in out
    assert scrubber.scrub(out) == out


ADVERSARIAL = [
    "a@" * 2048,
    "a." * 2048 + "@",
    "1." * 2048,
    ":" * 4096,
    "a:" * 2048,
    "0:" * 2048,
    "ab::" * 1024,
    "eyJ" * 1365,
    "eyJ" + "a" * 4000 + ".",
    "password=" * 455,
    "password:" + " " * 4000,
    "a" * 4000 + "@" + "b" * 95,
    "x@" + "a." * 2000,
    "-----BEGIN PRIVATE KEY-----" * 150,
    "https://" + "a" * 4000,
    "https://" * 512,
    "Bearer " * 585,
    "AKIA" * 1024,
    "1.1.1.1." * 512,
    "00:" * 1365,
    "authorization: " * 273,
]


@pytest.mark.parametrize("value", ADVERSARIAL, ids=lambda v: repr(v[:12]))
def test_adversarial_inputs_stay_fast(value: str) -> None:
    ALICE.scrub(value)  # compile the patterns outside the timing
    start = time.perf_counter()
    out = ALICE.scrub(value)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.25, f"{elapsed * 1000:.1f} ms"
    assert ALICE.scrub(out) == out


def test_never_raises_on_odd_strings() -> None:
    for value in (
        "\x00",
        "\ud800",
        "\ud800@x.com",
        "İ" * 10 + "/home/alice",
        "\r\n\t\x0b\x0c",
        "ﬀ" * 50,
    ):
        out = ALICE.scrub(value)
        assert isinstance(out, str)
        assert ALICE.scrub(out) == out


def test_internal_errors_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(rules_module, "load", broken)
    assert PATTERNS_ONLY.scrub("password=x") == REDACTED
    assert PATTERNS_ONLY.scrub("deploy") == "deploy"  # the fast path never reaches it


# --- property tests -----------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        "alice", "Alice", "/home/alice", "~alice", "alice-laptop", ".example.com", "<user>",
        "<host>", "<email>", "<redacted>", "<ip>", "<", ">", "@", ".", ":", "::", "=", "-", "_",
        "/", "\\", " ", "\n", '"', "'", "password", "token", "secret", "key", "Bearer ",
        "Authorization: ", "https://", "://", "AKIA", "eyJ", "ghp_", "1", "255", "10.0.0.1",
        "fe80", "a", "b", "00", "x@y.co", "----BEGIN", "PRIVATE KEY", "~", "}", ",",
    ]
)  # fmt: skip
STRUCTURED_TEXT = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=4)), max_size=40).map("".join)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), STRUCTURED_TEXT))
@example("password=<email>}")
@example('{"password": "a"}')
@example("1.2.3.4.5.6.7.8")
def test_idempotent_and_never_raises(value: str) -> None:
    for scrubber in (ALICE, WINDOWS, PATTERNS_ONLY):
        once = scrubber.scrub(value)
        assert isinstance(once, str)
        assert len(once) <= MAX_SCRUB_LENGTH
        assert scrubber.scrub(once) == once


def _ungated(value: str) -> str:
    """Every rule once, in file order, hints ignored."""
    for rule in rules_module.load().rules:
        value = rule.compiled().sub(rule.replace, value)
    return value


@settings(max_examples=300)
@given(st.one_of(st.text(), STRUCTURED_TEXT))
def test_hints_never_skip_a_match(value: str) -> None:
    assert rules_module.apply_rules(value) == _ungated(value)


def test_hints_never_skip_a_match_on_the_positives() -> None:
    for value, _ in POSITIVES:
        assert rules_module.apply_rules(value) == _ungated(value), value


def _token(alphabet: str, size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=size, max_size=size)


_B64 = ALNUM + "/+="
_URLSAFE = ALNUM + "-_"
_json_values = st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none())
_JWTS = st.builds(
    _jwt,
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["HS256", "RS256", "ES256", "none"])},
        optional={"typ": st.just("JWT"), "kid": st.text(max_size=10)},
    ),
    st.dictionaries(st.text(alphabet=ALNUM, max_size=8), _json_values, max_size=5),
    st.binary(max_size=64),
)
_EMAIL_LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._%+-]{0,20}", fullmatch=True)
_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_EMAILS = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    _EMAIL_LOCAL,
    st.lists(_LABEL, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
_OCTETS = st.integers(min_value=0, max_value=255)
_HEX_GROUP = st.integers(min_value=0, max_value=0xFFFF).map(lambda n: f"{n:x}")


def _ipv6_compressed(groups: list[int]) -> str:
    import ipaddress

    value = 0
    for group in groups:
        value = (value << 16) | group
    return ipaddress.IPv6Address(value).compressed


_IPV6 = st.one_of(
    st.lists(_HEX_GROUP, min_size=8, max_size=8).map(":".join),
    st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8)
    .filter(lambda g: g[0] != 0 and g[-1] != 0)
    .map(_ipv6_compressed),
)

# (strategy for the secret, how it is written into the text): the secret must not survive.
SECRET_KINDS: dict[str, st.SearchStrategy[tuple[str, str]]] = {
    "aws_access_key_id": st.builds(
        lambda p, body: (p + body, p + body),
        st.sampled_from(["AKIA", "ASIA"]),
        _token(UPPER_DIGITS, 16),
    ),
    "aws_secret_access_key": _token(_B64, 40).map(lambda s: (s, "aws_secret_access_key=" + s)),
    "google_api_key": _token(_URLSAFE, 35).map(lambda s: ("AIza" + s, "AIza" + s)),
    "github_token": st.one_of(
        st.builds(
            lambda p, b: p + b,
            st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
            _token(ALNUM, 36),
        ),
        st.builds(lambda a, b: "github_pat_" + a + "_" + b, _token(ALNUM, 22), _token(ALNUM, 59)),
    ).map(lambda s: (s, s)),
    "gitlab_token": _token(_URLSAFE, 20).map(lambda s: ("glpat-" + s, "glpat-" + s)),
    "slack_token": st.builds(
        lambda kind, a, b: f"xox{kind}-{a}-{b}",
        st.sampled_from("abprs"),
        _token("0123456789", 12),
        _token(ALNUM, 24),
    ).map(lambda s: (s, s)),
    "stripe_key": st.builds(
        lambda p, b: p + b,
        st.sampled_from(["sk_" + "live_", "rk_" + "live_", "sk_" + "test_"]),
        _token(ALNUM, 24),
    ).map(lambda s: (s, s)),
    "bearer_token": _token(ALNUM + "-._~+/", 32).map(lambda s: (s, "Bearer " + s)),
    "jwt": _JWTS.map(lambda s: (s, s)),
    "private_key": st.lists(_token(_B64, 64), min_size=1, max_size=4).map(
        lambda lines: (
            "\n".join(lines),
            "-----BEGIN "
            + "EC PRIVATE KEY-----\n"
            + "\n".join(lines)
            + "\n-----END EC PRIVATE KEY-----",
        )
    ),
    "url_credentials": st.builds(
        lambda user, password: (f"{user}:{password}", f"https://{user}:{password}@example.com/x"),
        _token(ALNUM, 8),
        _token(ALNUM + "!$%*", 12),
    ),
    "secret_assignment": st.builds(
        lambda key, sep, value: (value, f"{key}{sep}{value}"),
        st.sampled_from(
            [
                "password",
                "PASSWD",
                "secret",
                "token",
                "api_key",
                "apikey",
                "db_password",
                "X-Api-Key",
            ]
        ),
        st.sampled_from(["=", ": ", " = ", ":"]),
        _token(ALNUM + "!$%*/+-", 12),
    ),
    "email": _EMAILS.map(lambda s: (s, s)),
    "ipv4": st.lists(_OCTETS, min_size=4, max_size=4)
    .map(lambda o: ".".join(map(str, o)))
    .map(lambda s: (s, s)),
    "ipv6": _IPV6.map(lambda s: (s, s)),
    "mac_address": st.builds(
        lambda octets, sep: sep.join(f"{o:02x}" for o in octets),
        st.lists(st.integers(0, 255), min_size=6, max_size=6),
        st.sampled_from([":", "-"]),
    ).map(lambda s: (s, s)),
}


@pytest.mark.parametrize("kind", sorted(SECRET_KINDS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_generated_secrets_do_not_survive(kind: str, data: st.DataObject) -> None:
    secret, written = data.draw(SECRET_KINDS[kind], label="secret")
    before = data.draw(st.text(max_size=60), label="before")
    after = data.draw(st.text(max_size=60), label="after")
    assume(secret not in before and secret not in after)
    text = f"{before} {written} {after}"
    out = PATTERNS_ONLY.scrub(text)
    assert secret not in out
    assert PATTERNS_ONLY.scrub(out) == out


# --- the shared list: Python and Go RE2 -----------------------------------------------------------

_RE2_UNSUPPORTED = ("(?=", "(?!", "(?<=", "(?<!", "(?P=", "(?>")


def _parser() -> object:
    try:
        from re import _parser as parser  # type: ignore[attr-defined]
    except ImportError:  # Python < 3.11
        import sre_parse as parser
    return parser


def _walk(parsed: object) -> list[tuple[str, object]]:
    """Every (opcode name, argument) in an sre parse tree."""
    found: list[tuple[str, object]] = []

    def visit(node: object) -> None:
        if type(node).__name__ == "SubPattern":
            for op, av in node:  # type: ignore[attr-defined]
                found.append((getattr(op, "name", str(op)), av))
                visit(av)
        elif isinstance(node, (list, tuple)):
            for child in node:
                visit(child)

    visit(parsed)
    return found


@pytest.mark.parametrize(
    ("name", "regex", "placeholder"), SECRET_PATTERNS, ids=[p[0] for p in SECRET_PATTERNS]
)
def test_patterns_are_re2_compatible(name: str, regex: str, placeholder: str) -> None:
    compiled = re.compile(regex, re.ASCII)
    assert compiled.groups <= 2, "the convention allows a kept prefix and a kept suffix only"
    assert not compiled.groupindex, "numbered groups only"
    for construct in _RE2_UNSUPPORTED:
        assert construct not in regex
    assert not re.search(r"\\[1-9]", regex), "backreference"
    assert not re.search(r"(?<!\\)[*+?}]\+", regex), "possessive quantifier"
    assert "(?i)" not in regex, "use scoped (?i:...) groups"
    parser = _parser()
    ops = _walk(parser.parse(regex, re.ASCII))  # type: ignore[attr-defined]
    names = {op for op, _ in ops}
    forbidden = {
        "ASSERT",
        "ASSERT_NOT",
        "GROUPREF",
        "GROUPREF_EXISTS",
        "ATOMIC_GROUP",
        "POSSESSIVE_REPEAT",
    }
    assert not names & forbidden
    for op, av in ops:
        if op in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high = av[0], av[1]  # type: ignore[index]
            assert low <= 1000
            assert high <= 1000 or high == parser.MAXREPEAT  # type: ignore[attr-defined]
    assert placeholder in PLACEHOLDERS
    assert not compiled.search(placeholder), "a placeholder must never match again"


def test_pattern_names_are_unique_and_the_index_is_current() -> None:
    names = [name for name, _, _ in SECRET_PATTERNS]
    assert len(names) == len(set(names))
    document = json.loads(Path(rules_module.RULES_FILE).read_text(encoding="utf-8"))
    index = Path(rules_module.RULES_FILE).with_name("_index.py").read_text(encoding="utf-8")
    assert index == rules_module.render_index(document), (
        "privacy/_index.py is stale: python -m otel_cli_telemetry.privacy.rules"
    )
    grammar = Path(rules_module.RULES_FILE).with_name("_grammar.py").read_text(encoding="utf-8")
    assert grammar == rules_module.render_grammar(document), (
        "privacy/_grammar.py is stale: python -m otel_cli_telemetry.privacy.rules"
    )


def _go_template(regex: str, placeholder: str) -> str:
    groups = re.compile(regex, re.ASCII).groups
    return ("${1}" if groups >= 1 else "") + placeholder + ("${2}" if groups >= 2 else "")


def _python_single_pass(text: str) -> str:
    """What the collector does: each pattern once, in order, with the Go-style template."""
    for _, regex, placeholder in SECRET_PATTERNS:
        template = (
            _go_template(regex, placeholder).replace("${1}", r"\g<1>").replace("${2}", r"\g<2>")
        )
        text = re.sub(regex, template, text, flags=re.ASCII)
    return text


_GO_PROGRAM = r"""
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
)

type input struct {
	Patterns [][3]string `json:"patterns"`
	Samples  []string    `json:"samples"`
}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		panic(err)
	}
	compiled := make([]*regexp.Regexp, len(in.Patterns))
	failed := false
	for i, p := range in.Patterns {
		re, err := regexp.Compile(p[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", p[0], err)
			failed = true
			continue
		}
		compiled[i] = re
	}
	if failed {
		os.Exit(2)
	}
	out := make([]string, len(in.Samples))
	for j, s := range in.Samples {
		for i, p := range in.Patterns {
			s = compiled[i].ReplaceAllString(s, p[2])
		}
		out[j] = s
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
"""


def test_go_regexp_compiles_every_pattern_and_agrees(tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed")
    samples = [
        value
        for value in (
            [value for value, _ in POSITIVES]
            + NEGATIVES
            + [
                f"run {AWS_KEY_ID} then mail a.b@example.com from 10.0.0.1:80 and [2001:db8::1]",
                "token=" + JWT + " Authorization: Bearer " + "z" * 20 + " https://u:p@h/x",
                "5.15.153.1-microsoft-standard-WSL2 1.2.3.4.5 host 8.8.8.8. 00:1a:2b:3c:4d:5e",
            ]
        )
        if not value.endswith("\n")  # Python's $ also matches before a final newline
    ]
    payload = {
        "patterns": [[n, r, _go_template(r, p)] for n, r, p in SECRET_PATTERNS],
        "samples": samples,
    }
    (tmp_path / "input.json").write_text(json.dumps(payload))
    (tmp_path / "main.go").write_text(_GO_PROGRAM)
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local", GO111MODULE="on")
    result = subprocess.run(
        [go, "run", "main.go", str(tmp_path / "input.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    go_out = json.loads(result.stdout)
    assert len(go_out) == len(samples)
    for index, sample in enumerate(samples):
        assert go_out[index] == _python_single_pass(sample), sample


def test_a_typical_record_reads_no_rules() -> None:
    """The values of an ordinary command record take the string-only path (hot-path cost):
    rules.json is not read and no pattern is compiled (checked in a fresh interpreter).

    (OS and runtime versions and the installation id are trusted built-ins, checked by
    grammar only: not here.)"""
    program = """
import sys
from otel_cli_telemetry.privacy import rules
from otel_cli_telemetry.privacy.scrub import Scrubber
scrubber = Scrubber("/home/alice", "alice", "alice-laptop.example.com")
values = sys.argv[1:]
assert [scrubber.scrub(v) for v in values] == values
print(rules._loaded is None, rules._harmless is None)
"""
    record_values = [
        "deployctl deploy", "deployctl", "deploy", "1.4.2", "linux", "amd64", "cpython",
        "otel_cli_telemetry", "python", "--force", "--region", "usage_error",
        "requests.exceptions.ConnectionError", "github_actions", "claude_code", "upload",
        "deploy.functions.added", "cli_telemetry.command.duration", "{function}", "By",
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", program, *record_values],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
