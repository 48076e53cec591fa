"""Scrub secrets and machine-specific values out of every string the SDK records.

Two layers, applied by :meth:`Scrubber.scrub`:

1. :data:`SECRET_PATTERNS`: cloud keys, tokens, JWTs, private keys, credentials in URLs,
   ``password=...``-style assignments, emails, MAC and IP addresses become placeholders such
   as ``<aws-access-key>`` or ``<email>``. The same list feeds the collector, which repeats
   the defence server-side with OTTL ``replace_pattern`` statements, so every regex is
   written in the common subset of Python ``re`` and Go RE2: no lookarounds, no
   backreferences, no possessive quantifiers, no repetition count above 1000, and
   case-insensitive parts as scoped ``(?i:...)`` groups (so patterns can be combined).
2. Machine-specific values known only on the client: the home directory becomes ``~``, the
   user name ``<user>``, the host name ``<host>``. Plain string operations, no regex.

Replacement convention (shared with the collector): a pattern has at most two capture
groups. Group 1, when present, is a prefix kept verbatim (``password=``, ``https://``);
group 2, when present, is a suffix kept verbatim (the ``@`` before a URL's host). The rest
of the match becomes the placeholder; as a Go template, ``${1}<placeholder>${2}``.

Guarantees:

- **Bounded cost.** Values longer than :data:`MAX_SCRUB_LENGTH` characters are truncated
  *before* any regex work (back to the last whitespace within 256 characters of the limit,
  so a token cut in half is dropped rather than kept in part), and the patterns have no
  nested unbounded repetition, so a call costs at most a few milliseconds on any input.
- **Cheap common case.** Short values without ``@``, ``:``, ``=`` or three dots
  (``deploy``, ``--force``, ``ValueError``, ``1.4.2``) skip the patterns entirely, and each
  pattern runs only when the literals it needs (``AKIA``, ``eyJ``, ``://``, three dots...)
  are present. Neither ``re`` nor any pattern is imported or compiled until a value needs
  it; most commands never need it.
- **Idempotent.** ``scrub(scrub(x)) == scrub(x)``: a placeholder is never replaced again,
  and ``scrub`` repeats its passes until the text stops changing.
- **Never raises.** Any internal error yields ``<redacted>`` (fail closed).

Deliberately *not* scrubbed: version strings (``1.4.2``, semver, kernel releases such as
``5.15.153.1-microsoft-standard-WSL2``), durations and clock times (``12:30:45``), UUIDs
(the installation id is a random uuid4 and identifies nothing), hex digests, host names in
URLs other than this machine's. A bare four-part dotted number that is a valid IPv4
address (``1.2.3.4``) is taken as an address even if it was meant as a version.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Sequence

    _Scalar = str | bool | int | float
    _AttributeValue = _Scalar | Sequence[_Scalar] | None
    # A needle: a substring that must occur, or (substring, how many times at least).
    _Needle = str | tuple[str, int]

#: Longest value (in characters) that is scanned; longer values are truncated first.
MAX_SCRUB_LENGTH = 4096

#: What a value becomes when scrubbing fails or cannot converge (fail closed).
REDACTED = "<redacted>"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
_HEX4 = r"[0-9A-Fa-f]{1,4}"
_SENSITIVE_KEYS = (
    r"(?i:password|passwd|passphrase|pwd|secret|token|api[_.-]?key|apikey"
    r"|access[_.-]?key|private[_.-]?key|account[_.-]?key|credentials?)"
)

#: (name, regex, placeholder), applied in this order. Valid in Python ``re`` and Go RE2.
SECRET_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (
        # A PEM private key; an unterminated block (cut off) is redacted to the end.
        "private_key",
        r"-----BEGIN[A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END[A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----|$)",
        "<private-key>",
    ),
    (
        # JWS/JWE: base64url segments, the first a JSON object ('{"' encodes to 'eyJ'). A
        # token cut after its second segment is still caught.
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){0,3}",
        "<jwt>",
    ),
    ("aws_access_key_id", r"(?:AKIA|ASIA)[A-Z0-9]{16}", "<aws-access-key>"),
    (
        "aws_secret_access_key",
        r"((?i:aws[_.-]?secret[_.-]?(?:access[_.-]?)?key)[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?)"
        r"[A-Za-z0-9/+=]{40}",
        "<aws-secret-key>",
    ),
    ("google_api_key", r"AIza[0-9A-Za-z_-]{35}", "<google-api-key>"),
    (
        "github_token",
        r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
        "<github-token>",
    ),
    (
        "gitlab_token",
        r"gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_-]{20,255}(?:\.[A-Za-z0-9_-]{2,64}){0,4}",
        "<gitlab-token>",
    ),
    ("slack_token", r"xox[abeoprs]-[A-Za-z0-9-]{10,255}", "<slack-token>"),
    ("stripe_key", r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,255}", "<stripe-key>"),
    (
        # scheme://user:password@host -> scheme://<redacted>@host. A user alone is redacted
        # too: it is often a token, and otherwise a person's login.
        "url_credentials",
        r"([A-Za-z][A-Za-z0-9+.-]{1,30}://)[^\s/?#]{1,256}(@)",
        REDACTED,
    ),
    (
        # The credentials after an Authorization header, with the scheme word kept.
        "authorization_header",
        r"((?i:authorization)[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?(?:[A-Za-z]{1,20}[ \t]+)?)"
        r"[^\s\"',;]+",
        REDACTED,
    ),
    ("bearer_token", r"\b((?i:bearer)[ \t]+)[A-Za-z0-9._~+/-]{16,}=*", REDACTED),
    (
        # key=value, key: value, "key": "value" where the key names a secret. The key may
        # carry separated affixes (db_password, token_file), not glued ones (tokenizer,
        # max_tokens, passwordless), which are ordinary settings.
        "secret_assignment",
        r"(" + _SENSITIVE_KEYS + r"(?:[_.-][A-Za-z0-9]{1,20}){0,3}[\"']?[ \t]{0,3}[:=][ \t]{0,3})"
        r"(?:\"[^\"\r\n]{0,512}\"|'[^'\r\n]{0,512}'|[^\s\"',;&]{1,512})",
        REDACTED,
    ),
    (
        "email",
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}"
        r"\.[A-Za-z]{2,63}",
        "<email>",
    ),
    ("mac_address", r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b", "<mac>"),
    (
        # An address or a range (a-b). Group 1 is empty; group 2 keeps the character after
        # the address, which must not continue a version: not a word character, '+', '-',
        # or a '.' before a digit (5.15.153.1-microsoft is a kernel release, 1.2.3.4.5 a
        # version); a sentence's final '.' is fine.
        "ipv4",
        rf"()\b{_IPV4}(?:-{_IPV4})?([^\w.+-]|\.[^0-9]|\.?$)",
        "<ip>",
    ),
    (
        # Full form; '::' with a group on each side; a prefix of two groups or more ending
        # in '::' (2001:db8:1:2:: names a network); a leading '::' and two groups or more.
        # Clock times (12:30:45), C++/Rust paths (std::io, A::b) and ::1 do not match; a
        # bare 'abc::def' of hex words does.
        "ipv6",
        rf"\b(?:{_HEX4}(?::{_HEX4}){{7}}|{_HEX4}(?::{_HEX4}){{0,6}}::{_HEX4}(?::{_HEX4}){{0,6}})\b"
        rf"|\b{_HEX4}(?::{_HEX4}){{1,6}}::\B|::{_HEX4}(?::{_HEX4}){{1,6}}\b",
        "<ip>",
    ),
)

# For each pattern, groups of needles: the regex runs only if every group has a needle in
# the text. A group flagged True is looked for in the lowercased text. Triggers only skip
# work a pattern could not do without its literals; a test checks they never skip a match.
_TRIGGERS: dict[str, tuple[tuple[bool, tuple[_Needle, ...]], ...]] = {
    "private_key": ((False, ("PRIVATE KEY",)),),
    "jwt": ((False, ("eyJ",)),),
    "aws_access_key_id": ((False, ("AKIA", "ASIA")),),
    "aws_secret_access_key": ((True, ("secret",)), (False, (":", "="))),
    "google_api_key": ((False, ("AIza",)),),
    "github_token": ((False, ("gh", "github_pat_")),),
    "gitlab_token": ((False, ("gl",)),),
    "slack_token": ((False, ("xox",)),),
    "stripe_key": ((False, ("_live_", "_test_")),),
    "url_credentials": ((False, ("://",)), (False, ("@",))),
    "authorization_header": ((True, ("authorization",)), (False, (":", "="))),
    "bearer_token": ((True, ("bearer",)),),
    "secret_assignment": (
        (True, ("pass", "pwd", "secret", "token", "key", "credential")),
        (False, (":", "=")),
    ),
    "email": ((False, ("@",)),),
    "mac_address": ((False, ((":", 5), ("-", 5))),),
    "ipv4": ((False, ((".", 3),)),),
    "ipv6": ((False, ("::", (":", 7))),),
}

#: Every placeholder the scrubber writes; text equal to one is never replaced again.
PLACEHOLDERS: frozenset[str] = frozenset(
    {placeholder for _, _, placeholder in SECRET_PATTERNS} | {REDACTED, "<user>", "<host>"}
)

# User and host names that identify no one; replacing them would only mangle values
# ("node" as a runtime, "runner" in a CI path, "localhost" in a URL).
_GENERIC_NAMES = frozenset(
    {
        "admin", "administrator", "app", "build", "builder", "buildkite-agent", "centos",
        "circleci", "codespace", "debian", "default", "dev", "docker", "ec2-user", "fedora",
        "gitlab-runner", "gitpod", "guest", "home", "jenkins", "localhost",
        "localhost.localdomain", "node", "nobody", "root", "runner", "test", "ubuntu", "user",
        "users", "vagrant", "vscode", "vsts",
    }
)  # fmt: skip

_MIN_NAME_LENGTH = 3
_MAX_ROUNDS = 4
_TRUNCATE_BACKOFF = 256
# Shortest match of any pattern that needs none of '@', ':', '=' or three dots (a JWT).
_MIN_TOKEN_LENGTH = 14


class _Rule:
    """One secret pattern with its trigger, compiled on first need."""

    __slots__ = ("groups", "name", "placeholder", "regex", "source", "triggers")

    def __init__(self, name: str, source: str, placeholder: str) -> None:
        self.name = name
        self.source = source
        self.placeholder = placeholder
        self.triggers = _TRIGGERS[name]
        self.regex: re.Pattern[str] | None = None
        self.groups = 0

    def compiled(self) -> re.Pattern[str]:
        regex = self.regex
        if regex is None:
            import re

            # re.ASCII gives \b, \w, \s and (?i) the meaning they have in RE2.
            regex = re.compile(self.source, re.ASCII)
            self.groups = regex.groups
            self.regex = regex
        return regex

    def triggered(self, text: str, lowered: str) -> bool:
        for folded, needles in self.triggers:
            haystack = lowered if folded else text
            for needle in needles:
                if isinstance(needle, str):
                    if needle in haystack:
                        break
                elif haystack.count(needle[0]) >= needle[1]:
                    break
            else:
                return False
        return True

    def replace(self, match: re.Match[str]) -> str:
        start = match.end(1) if self.groups >= 1 else match.start()
        end = match.start(2) if self.groups >= 2 else match.end()
        if _is_scrubbed(match.string[start:end]):
            return match.group(0)
        prefix = (match.group(1) or "") if self.groups >= 1 else ""
        suffix = (match.group(2) or "") if self.groups >= 2 else ""
        return prefix + self.placeholder + suffix


def _is_scrubbed(text: str) -> bool:
    """Whether ``text`` is a placeholder, maybe quoted or followed by punctuation.

    A value replaced in an earlier pattern or round is left alone: ``"<aws-secret-key>"``
    keeps its specific placeholder, and ``{"password": "x"}`` does not lose its closing
    brace to the unquoted-value form (``<redacted>}``) when the round is repeated.
    """
    if text in PLACEHOLDERS:
        return True
    head, closed, tail = text.lstrip("\"'").partition(">")
    return bool(closed) and head + ">" in PLACEHOLDERS and not any(c.isalnum() for c in tail)


_RULES = tuple(_Rule(name, source, placeholder) for name, source, placeholder in SECRET_PATTERNS)


def _may_hold_secret(text: str) -> bool:
    """Cheap filter: False only when no pattern can match (short, no ``@``, ``:``, ``=``)."""
    return (
        len(text) >= _MIN_TOKEN_LENGTH
        or "@" in text
        or ":" in text
        or "=" in text
        or text.count(".") >= 3
    )


def _apply_patterns(text: str, *, gated: bool = True) -> str:
    """Replace every secret pattern in ``text`` (only those triggered, when ``gated``)."""
    lowered = text.lower()
    for rule in _RULES:
        if gated and not rule.triggered(text, lowered):
            continue
        replaced = rule.compiled().sub(rule.replace, text)
        if replaced != text:
            text = replaced
            lowered = text.lower()
    return text


def _truncate(text: str) -> str:
    """Cut ``text`` to :data:`MAX_SCRUB_LENGTH`, dropping a word cut in half if short."""
    head = text[:MAX_SCRUB_LENGTH]
    if len(text) > MAX_SCRUB_LENGTH and not text[MAX_SCRUB_LENGTH].isspace():
        for index in range(MAX_SCRUB_LENGTH - 1, MAX_SCRUB_LENGTH - 1 - _TRUNCATE_BACKOFF, -1):
            if head[index].isspace():
                return head[: index + 1]
    return head


def _fold(text: str) -> str:
    """Lowercase ``text`` keeping its length, so indexes in both strings agree."""
    if text.isascii():
        return text.lower()
    return "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)


def _usable_name(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip()
    if len(name) < _MIN_NAME_LENGTH or name.lower() in _GENERIC_NAMES:
        return None
    return name


def _home_forms(home: str) -> list[str]:
    """The spellings under which a home directory shows up in strings."""
    home = home.rstrip("/\\")
    if len(home) < 3:  # "/" or a bare drive ("C:") would match every path
        return []
    forms = {home}
    if "\\" in home or home[1] == ":":
        forward = home.replace("\\", "/")
        forms.update({forward, home.replace("\\", "\\\\")})
        if len(forward) > 2 and forward[1] == ":":  # as MSYS/Git Bash, WSL and Cygwin see it
            drive, rest = forward[0].lower(), forward[2:]
            forms.update({f"/{drive}{rest}", f"/mnt/{drive}{rest}", f"/cygdrive/{drive}{rest}"})
    return list(forms)


# What a machine-specific match becomes; None keeps the text (an existing placeholder).
_MACHINE_REPLACEMENTS = {
    "keep": None,
    "home": "~",
    "host": "<host>",
    "tilde": "~",
    "user": "<user>",
}


def _path_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_.-"


def _bounded(kind: str, text: str, start: int, end: int) -> bool:
    """Whether the match ``text[start:end]`` stands alone as a ``kind`` (see Scrubber)."""
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if kind == "keep":
        return True
    if kind == "home":
        return not (before and _path_char(before)) and not (after and _path_char(after))
    if kind == "tilde":
        return not after.isalnum()
    return not before.isalnum() and not after.isalnum()


class Scrubber:
    """Scrubs strings: secret patterns first, then this machine's home, user and host names.

    ``home``, ``user`` and ``hostname`` are the machine-specific values to remove; any may
    be None. The home path becomes ``~`` wherever it starts a path (not inside another
    path, not as the prefix of a longer name), also as ``~user``, under ``extra_homes``
    (its resolved symlink), and for a Windows home with forward slashes, doubled
    backslashes and as MSYS/WSL/Cygwin spell it. The user name becomes ``<user>`` and the
    host name (and its first label) ``<host>``, as whole words (letters and digits on
    neither side) and case-insensitively, when at least 3 characters long and not a
    generic account or host name (``root``, ``runner``, ``localhost``...).
    """

    __slots__ = ("_needles", "_targets")

    def __init__(
        self,
        home: str | None,
        user: str | None,
        hostname: str | None,
        *,
        extra_homes: Sequence[str] = (),
    ) -> None:
        homes: set[str] = set()
        for path in (home, *extra_homes):
            if path:
                homes.update(_fold(form) for form in _home_forms(path))
        hosts: set[str] = set()
        full = _usable_name(hostname)
        if full and not full.replace(".", "").isdigit():  # an IP is the patterns' job
            hosts.add(_fold(full))
            label = _usable_name(full.split(".", 1)[0])
            if label:
                hosts.add(_fold(label))
        user = _usable_name(user)
        users = {_fold(user)} if user else set()

        def longest_first(kind: str, needles: set[str]) -> list[tuple[str, str]]:
            return [(kind, needle) for needle in sorted(needles, key=len, reverse=True)]

        # Priority order: earlier kinds claim their text first.
        self._targets = (
            longest_first("home", homes)
            + longest_first("host", hosts)
            + longest_first("tilde", {"~" + u for u in users})
            + longest_first("user", users)
        )
        self._needles = tuple(homes | hosts | users)

    @classmethod
    def for_this_machine(cls) -> Scrubber:
        """A scrubber for the current user on this machine; never raises.

        The user comes from ``USER``/``LOGNAME``/``USERNAME``, else the password database
        entry of this uid (as ``getpass.getuser()`` would, only tried when those are unset,
        since it may ask a directory service). The host name is ``socket.gethostname()``
        if ``socket`` is already imported, else ``os.uname().nodename`` (the same value,
        without a ~1.5 ms import), else ``COMPUTERNAME`` on Windows.
        """
        environ = os.environ
        home: str | None = None
        extra: list[str] = []
        try:
            home = os.path.expanduser("~")
            if home == "~":
                home = None
            else:
                resolved = os.path.realpath(home)
                if resolved != home:
                    extra.append(resolved)
        except Exception:
            home = None
        user = environ.get("USER") or environ.get("LOGNAME") or environ.get("USERNAME")
        if not user:
            try:
                # What getpass.getuser() falls back to, without its ~3 ms import.
                import pwd

                user = pwd.getpwuid(os.getuid()).pw_name
            except Exception:  # no pwd (Windows), or no entry for this uid
                user = None
        return cls(home, user, _hostname(), extra_homes=extra)

    def scrub(self, value: str) -> str:
        """Return ``value`` with secrets and machine-specific values replaced; never raises."""
        try:
            text = value if len(value) <= MAX_SCRUB_LENGTH else _truncate(value)
            for _ in range(_MAX_ROUNDS):
                scrubbed = self._one_round(text)
                if len(scrubbed) > MAX_SCRUB_LENGTH:  # placeholders can be longer than a match
                    scrubbed = _truncate(scrubbed)
                if scrubbed == text:
                    return text
                text = scrubbed
        except Exception:
            return REDACTED
        return REDACTED  # did not settle: fail closed

    def _one_round(self, text: str) -> str:
        if _may_hold_secret(text):
            text = _apply_patterns(text)
        if self._needles:
            folded = _fold(text)
            for needle in self._needles:
                if needle in folded:
                    return self._replace_machine_values(text, folded)
        return text

    def _replace_machine_values(self, text: str, folded: str) -> str:
        claimed: list[tuple[int, int, str | None]] = []
        targets: list[tuple[str, str]] = []
        if "<" in text:
            targets.extend(("keep", placeholder) for placeholder in PLACEHOLDERS)
        targets.extend(self._targets)
        for kind, needle in targets:
            start = folded.find(needle)
            while start >= 0:
                end = start + len(needle)
                if _bounded(kind, text, start, end) and all(
                    end <= other_start or start >= other_end
                    for other_start, other_end, _ in claimed
                ):
                    claimed.append((start, end, _MACHINE_REPLACEMENTS[kind]))
                    start = folded.find(needle, end)
                else:
                    start = folded.find(needle, start + 1)
        parts: list[str] = []
        position = 0
        for start, end, replacement in sorted(claimed):
            if replacement is not None:
                parts.append(text[position:start])
                parts.append(replacement)
                position = end
        if not parts:
            return text
        parts.append(text[position:])
        return "".join(parts)


def _hostname() -> str | None:
    try:
        socket = sys.modules.get("socket")
        if socket is not None:
            name: str = socket.gethostname()
            return name
        if hasattr(os, "uname"):
            return os.uname().nodename
        name = os.environ.get("COMPUTERNAME", "")
        if name:
            return name
        import socket as socket_module

        return socket_module.gethostname()
    except Exception:
        return None


_default: Scrubber | None = None


def default_scrubber() -> Scrubber:
    """The process-wide :meth:`Scrubber.for_this_machine`, built once on first use."""
    global _default
    scrubber = _default
    if scrubber is None:
        scrubber = _default = Scrubber.for_this_machine()
    return scrubber


def scrub_value(value: _AttributeValue, scrubber: Scrubber | None = None) -> _AttributeValue:
    """Scrub one attribute value: a str, or each str in a list/tuple (returned as a list).

    Numbers, booleans, None and anything else are returned unchanged. Uses
    :func:`default_scrubber` unless ``scrubber`` is given.
    """
    if isinstance(value, str):
        return (scrubber or default_scrubber()).scrub(value)
    if isinstance(value, (list, tuple)):
        active = scrubber or default_scrubber()
        return [active.scrub(item) if isinstance(item, str) else item for item in value]
    return value
