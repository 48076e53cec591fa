"""Scrub secrets and personal data out of free text (and check names and identifiers).

Layers, applied by :meth:`Scrubber.scrub` in this order, repeated until the text settles:

1. This machine's home directory (and ``~user``) becomes ``~`` (plain string operations).
2. The rules of ``rules.json`` (:mod:`.rules`): 300-odd vendor token formats, private
   keys, JWTs, credentials in URLs and assignments, and personal data (any user's home
   directory, internal host names, emails, IP and MAC addresses, payment cards, phone
   numbers, US SSNs, IBANs...) become placeholders such as ``<github-token>`` or ``<email>``.
   The collector applies the same file (Go code generated from it).
3. The entropy catch-all: a token-like run no rule knows becomes ``<token>``.
4. This machine's user name becomes ``<user>``, its host name ``<host>``.

Guarantees:

- **Bounded cost.** Values longer than :data:`MAX_SCRUB_LENGTH` characters are truncated
  *before* any regex work (back to the last whitespace within 256 characters of the limit,
  so a token cut in half is dropped rather than kept in part), and the patterns have no
  nested unbounded repetition.
- **Cheap common case.** A rule runs only when the value passes its hints (keywords,
  shortest match, digits needed: :func:`.rules.candidate_rules`); most values pass none,
  and then neither ``rules.json`` nor ``re`` is touched. Rules are compiled one by one,
  on first need.
- **Idempotent.** ``scrub(scrub(x)) == scrub(x)``: a placeholder is never replaced again,
  and ``scrub`` repeats its passes until the text stops changing.
- **Never raises.** Any internal error yields ``<redacted>`` (fail closed).

Deliberately *not* scrubbed: version strings (``1.4.2``, kernel releases such as
``5.15.153.1-microsoft-standard-WSL2``), durations and clock times (``12:30:45``), UUIDs
(the installation id is a random uuid4 and identifies nothing), hex digests, public host
names. A bare four-part dotted number that is a valid IPv4 address (``1.2.3.4``) is taken as
an address even if it was meant as a version.
"""

from __future__ import annotations

import os
import sys

from . import _index, rules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    _Scalar = str | bool | int | float
    _AttributeValue = _Scalar | Sequence[_Scalar] | None

#: Longest value (in characters) that is scanned; longer values are truncated first.
MAX_SCRUB_LENGTH = 4096

#: What a value becomes when scrubbing fails or cannot converge (fail closed).
REDACTED = "<redacted>"

#: Every placeholder the scrubber writes; text equal to one is never replaced again.
PLACEHOLDERS: frozenset[str] = _index.PLACEHOLDERS


def __getattr__(name: str) -> object:
    if name == "SECRET_PATTERNS":
        return secret_patterns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def secret_patterns() -> tuple[tuple[str, str, str], ...]:
    """Every rule of rules.json as (id, RE2-compatible regex, placeholder), in file order."""
    return tuple((rule.id, rule.pattern, rule.placeholder) for rule in rules.load().rules)


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
    """Scrubs strings: this machine's home, the rules, the entropy check, its user and host.

    ``home``, ``user`` and ``hostname`` are the machine-specific values to remove; any may
    be None. The home path becomes ``~`` wherever it starts a path (not inside another
    path, not as the prefix of a longer name), also as ``~user``, under ``extra_homes``
    (its resolved symlink), and for a Windows home with forward slashes, doubled
    backslashes and as MSYS/WSL/Cygwin spell it. The user name becomes ``<user>`` and the
    host name (and its first label) ``<host>``, as whole words (letters and digits on
    neither side) and case-insensitively, when at least 3 characters long and not a
    generic account or host name (``root``, ``runner``, ``localhost``...).
    """

    __slots__ = ("_home_needles", "_home_targets", "_name_needles", "_name_targets")

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
        tildes = {"~" + u for u in users}
        self._home_targets = longest_first("home", homes) + longest_first("tilde", tildes)
        self._name_targets = longest_first("host", hosts) + longest_first("user", users)
        self._home_needles = tuple(homes | tildes)
        self._name_needles = tuple(hosts | users)

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
        text = self._machine(text, self._home_needles, self._home_targets)
        text = rules.apply_rules(text)
        text = rules.replace_tokens(text)
        return self._machine(text, self._name_needles, self._name_targets)

    def _machine(self, text: str, needles: tuple[str, ...], targets: list[tuple[str, str]]) -> str:
        if needles:
            folded = _fold(text)
            for needle in needles:
                if needle in folded:
                    return self._replace_machine_values(text, folded, targets)
        return text

    def _replace_machine_values(
        self, text: str, folded: str, own_targets: list[tuple[str, str]]
    ) -> str:
        claimed: list[tuple[int, int, str | None]] = []
        targets: list[tuple[str, str]] = []
        if "<" in text:
            targets.extend(("keep", placeholder) for placeholder in PLACEHOLDERS)
        targets.extend(own_targets)
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
