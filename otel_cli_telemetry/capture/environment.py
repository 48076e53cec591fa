"""Where a command runs: CI provider, AI coding agent, terminal, OS type and CPU architecture.

Every function here is pure or nearly so (it reads the mapping or strings it is given), runs
on the CLI's hot path, and imports nothing beyond ``os`` and ``sys``: ``platform`` (several
milliseconds to import) is loaded only as a fallback on Windows or where ``os.uname`` is
missing. Nothing returned is taken verbatim from an environment variable: CI providers and
agents are reported as ids from fixed tables, so a variable's value can never leak.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Protocol

    class _Stream(Protocol):
        def isatty(self) -> bool: ...


_FALSE_VALUES = frozenset({"", "0", "false", "no", "off", "n", "f"})


def _is_set(environ: Mapping[str, str], name: str) -> bool:
    """A variable counts when present and not empty/false-like (``CI=false`` is not CI)."""
    value = environ.get(name)
    return value is not None and value.strip().lower() not in _FALSE_VALUES


# (provider id, conditions): the provider is detected when all variables of any one
# condition are set. Checked in order; sources are each provider's documented variables,
# cross-checked with the ci-info package's vendor list (used by Next.js) and SAM CLI's cicd.py.
_CI_PROVIDERS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("github_actions", (("GITHUB_ACTIONS",),)),
    ("gitlab_ci", (("GITLAB_CI",),)),
    ("azure_pipelines", (("TF_BUILD",),)),
    ("circleci", (("CIRCLECI",),)),
    ("travis_ci", (("TRAVIS",),)),
    ("jenkins", (("JENKINS_URL",), ("BUILD_ID", "JENKINS_HOME"))),
    ("buildkite", (("BUILDKITE",),)),
    ("teamcity", (("TEAMCITY_VERSION",),)),
    ("bitbucket_pipelines", (("BITBUCKET_BUILD_NUMBER",),)),
    ("appveyor", (("APPVEYOR",),)),
    ("aws_codebuild", (("CODEBUILD_BUILD_ID",),)),
    ("google_cloud_build", (("BUILDER_OUTPUT",),)),
    ("drone", (("DRONE",),)),
    ("cirrus_ci", (("CIRRUS_CI",),)),
    ("semaphore", (("SEMAPHORE",),)),
    ("bitrise", (("BITRISE_IO",),)),
    ("bamboo", (("bamboo_planKey",), ("bamboo_buildKey",))),
    ("gocd", (("GO_PIPELINE_LABEL",),)),
    ("harness", (("HARNESS_BUILD_ID",),)),
)

#: Returned by :func:`detect_ci` when only the generic ``CI`` variable says CI.
GENERIC_CI = "generic"


def detect_ci(environ: Mapping[str, str]) -> str | None:
    """The CI provider id (``github_actions``, ``gitlab_ci``...), ``"generic"``, or None.

    A specific provider wins over the generic ``CI``/``CONTINUOUS_INTEGRATION`` variables,
    even when ``CI=false`` (a common trick to relax build warnings; the job still runs in
    CI). ``CI`` set to ``false``, ``0``, ``no``, ``off`` or empty means "not CI".
    """
    for provider, conditions in _CI_PROVIDERS:
        for names in conditions:
            if all(_is_set(environ, name) for name in names):
                return provider
    if _is_set(environ, "CI") or _is_set(environ, "CONTINUOUS_INTEGRATION"):
        return GENERIC_CI
    return None


#: Returned by :func:`detect_agent` when ``AI_AGENT`` names an agent not in the table.
OTHER_AGENT = "other"

# Values of the AI_AGENT / AGENT conventions, normalised (lowercase, "-" for "_", no
# "@version"), to our ids.
_AGENT_NAMES: dict[str, str] = {
    "aider": "aider",
    "amp": "amp",
    "antigravity": "antigravity",
    "auggie": "augment",
    "augment": "augment",
    "augment-cli": "augment",
    "claude": "claude_code",
    "claude-code": "claude_code",
    "claudecode": "claude_code",
    "cline": "cline",
    "codex": "codex",
    "codex-cli": "codex",
    "copilot": "github_copilot",
    "cowork": "claude_cowork",
    "crush": "crush",
    "cursor": "cursor",
    "cursor-agent": "cursor",
    "cursor-cli": "cursor",
    "devin": "devin",
    "gemini": "gemini_cli",
    "gemini-cli": "gemini_cli",
    "github-copilot": "github_copilot",
    "github-copilot-cli": "github_copilot",
    "goose": "goose",
    "jules": "jules",
    "kiro": "kiro",
    "opencode": "opencode",
    "qwen": "qwen_code",
    "qwen-code": "qwen_code",
    "replit": "replit",
    "roo": "roo_code",
    "roo-code": "roo_code",
    "trae": "trae",
    "warp": "warp",
    "windsurf": "windsurf",
}

# (agent id, variables): detected when any variable is set. Order matters: markers set for
# the agent's own commands come first, markers of an IDE's or workspace's terminal last
# (Claude Code run from Cursor's terminal is Claude Code). Sources, as read:
#   Next.js  = vercel/next.js packages/next/src/telemetry/detect-agent.ts
#   HF       = huggingface/huggingface_hub src/huggingface_hub/utils/_detect_agent.py
#   SAM      = aws/aws-sam-cli samcli/lib/telemetry/agent_detector.py
#   vibing   = ascorbic/am-i-vibing src/providers.ts and its changesets
_AGENT_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("claude_cowork", ("CLAUDE_CODE_IS_COWORK",)),  # Next.js, HF
    # CLAUDECODE=1: Claude Code's documented marker (SAM, Next.js, HF, .NET); CLAUDE_CODE:
    # Next.js, HF.
    ("claude_code", ("CLAUDECODE", "CLAUDE_CODE")),
    # Next.js, HF. SAM matches any CODEX_* name; CODEX_HOME is user configuration, so the
    # names Codex sets for the commands it runs are listed instead.
    ("codex", ("CODEX_SANDBOX", "CODEX_CI", "CODEX_THREAD_ID", "CODEX_SANDBOX_NETWORK_DISABLED")),
    ("gemini_cli", ("GEMINI_CLI",)),  # SAM (exact name, not GEMINI_CLI_*), Next.js, HF
    # COPILOT_AGENT_SESSION_ID: SAM; COPILOT_MODEL, COPILOT_ALLOW_ALL: Next.js, HF. Their
    # COPILOT_GITHUB_TOKEN is left out: users export it in their shell profile.
    ("github_copilot", ("COPILOT_AGENT_SESSION_ID", "COPILOT_MODEL", "COPILOT_ALLOW_ALL")),
    ("amp", ("AMP_CURRENT_THREAD_ID",)),  # vibing (Amp also sets AGENT=amp)
    ("goose", ("GOOSE_TERMINAL",)),  # HF (Goose also sets AGENT=goose)
    ("opencode", ("OPENCODE_CLIENT", "OPENCODE")),  # OPENCODE_CLIENT: Next.js, HF; OPENCODE: SAM
    ("augment", ("AUGMENT_AGENT",)),  # Next.js, HF, vibing
    ("antigravity", ("ANTIGRAVITY_AGENT",)),  # Next.js, HF
    ("cline", ("CLINE_ACTIVE",)),  # HF
    ("roo_code", ("ROO_ACTIVE",)),  # HF
    ("qwen_code", ("QWEN_CODE",)),  # vibing
    ("trae", ("TRAE_AI_SHELL_ID",)),  # HF
    ("cursor", ("CURSOR_AGENT",)),  # SAM, Next.js ("cursor-cli")
    ("windsurf", ("CODEIUM_EDITOR_APP_ROOT",)),  # vibing
    # REPL_ID marks any Replit workspace; Next.js, HF and @vercel/detect-agent count it.
    ("replit", ("REPL_ID",)),
)


def _agent_name(value: str | None) -> str | None:
    if not value:
        return None
    name = value.strip().lower().split("@", 1)[0].strip().replace("_", "-")
    return _AGENT_NAMES.get(name) if name else None


def detect_agent(environ: Mapping[str, str]) -> str | None:
    """The AI coding agent running this command (``claude_code``, ``cursor``...), or None.

    1. ``AI_AGENT`` (the convention of @vercel/detect-agent, read by Next.js and HF): its
       value maps to our id, or ``"other"`` for a name we do not know (never the raw value).
    2. ``AGENT`` (set by Goose and Amp; HF reads it too): only known names count, because
       the name is generic enough for unrelated tools to use.
    3. Each agent's own markers (see ``_AGENT_MARKERS`` for the source of each), then Kiro
       (``TERM_PROGRAM=kiro``, or ``AWS_EXECUTION_ENV`` naming Kiro or Amazon Q: SAM) and
       Cursor's terminal with the pager its agent sets (``CURSOR_TRACE_ID`` plus
       ``PAGER="head -n 10000 | cat"``: vibing). ``CURSOR_TRACE_ID`` alone is not counted,
       unlike Next.js and HF: a person typing in Cursor's terminal has it too.

    Aider exports nothing of its own (``AIDER_*`` variables are the user's configuration),
    so it is only recognised through ``AI_AGENT``/``AGENT``.
    """
    declared = environ.get("AI_AGENT", "").strip()
    if declared:
        return _agent_name(declared) or OTHER_AGENT
    generic = _agent_name(environ.get("AGENT"))
    if generic:
        return generic
    for agent, names in _AGENT_MARKERS:
        for name in names:
            if _is_set(environ, name):
                return agent
    if environ.get("TERM_PROGRAM", "").lower() == "kiro":
        return "kiro"
    execution_env = environ.get("AWS_EXECUTION_ENV", "").lower()
    if "kiro" in execution_env or "amazonq" in execution_env:
        return "kiro"
    if _is_set(environ, "CURSOR_TRACE_ID") and environ.get("PAGER") == "head -n 10000 | cat":
        return "cursor"
    return None


def is_interactive(stdin: _Stream | None, stdout: _Stream | None) -> bool:
    """Whether both streams are terminals. False for None, closed or broken streams."""
    try:
        return (
            stdin is not None
            and stdout is not None
            and bool(stdin.isatty())
            and bool(stdout.isatty())
        )
    except Exception:
        return False


# platform.machine() / os.uname().machine / PROCESSOR_ARCHITECTURE values (lowercased) to
# the semantic-convention host.arch enum: amd64, arm32, arm64, ia64, ppc32, ppc64, s390x, x86.
_ARCHES: dict[str, str] = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "x64": "amd64",
    "em64t": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "arm64e": "arm64",
    "aarch64_be": "arm64",
    "armv8l": "arm32",
    "armv7l": "arm32",
    "armv7": "arm32",
    "armv7a": "arm32",
    "armv6l": "arm32",
    "armv6": "arm32",
    "armv5tel": "arm32",
    "arm": "arm32",
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "x86": "x86",
    "ppc64le": "ppc64",
    "ppc64": "ppc64",
    "ppc": "ppc32",
    "powerpc": "ppc32",
    "s390x": "s390x",
    "ia64": "ia64",
}


def host_arch(machine: str) -> str:
    """The semconv ``host.arch`` value for a machine name (``x86_64`` -> ``amd64``).

    Unknown names are returned lowercased, as they are.
    """
    name = machine.strip().lower()
    return _ARCHES.get(name, name)


# Prefixes of platform.system() / sys.platform / uname sysname values (lowercased) to the
# semconv os.type enum.
_OS_PREFIXES: tuple[tuple[str, str], ...] = (
    ("linux", "linux"),
    ("darwin", "darwin"),
    ("win", "windows"),
    ("cygwin", "windows"),
    ("msys", "windows"),
    ("freebsd", "freebsd"),
    ("openbsd", "openbsd"),
    ("netbsd", "netbsd"),
    ("dragonfly", "dragonflybsd"),
    ("sunos", "solaris"),
    ("solaris", "solaris"),
    ("aix", "aix"),
    ("hp-ux", "hpux"),
    ("hpux", "hpux"),
    ("os/390", "zos"),
    ("z/os", "zos"),
    ("zos", "zos"),
)


def os_type(system: str) -> str:
    """The semconv ``os.type`` value for ``platform.system()`` or ``sys.platform`` output.

    ``Darwin``/``darwin`` -> ``darwin``, ``Windows``/``win32`` -> ``windows``,
    ``SunOS``/``sunos5`` -> ``solaris``, ``freebsd14`` -> ``freebsd``; unknown names are
    returned lowercased.
    """
    name = system.strip().lower()
    for prefix, value in _OS_PREFIXES:
        if name.startswith(prefix):
            return value
    return name


def os_type_and_version() -> tuple[str, str]:
    """(``os.type``, ``os.version``) for this machine; never raises.

    POSIX: ``os.uname()`` (a system call; the release, or the version on Solaris, as the
    OpenTelemetry SDK's OS detector reports). Windows: ``sys.getwindowsversion()``
    (``10.0.22631``); ``platform`` is imported only if that fails.
    """
    try:
        if sys.platform == "win32":
            try:
                win = sys.getwindowsversion()
                return "windows", f"{win.major}.{win.minor}.{win.build}"
            except Exception:
                import platform

                return "windows", platform.version()
        if hasattr(os, "uname"):
            uname = os.uname()
            kind = os_type(uname.sysname)
            return kind, uname.version if kind == "solaris" else uname.release
        import platform

        kind = os_type(platform.system() or sys.platform)
        return kind, platform.release()
    except Exception:
        return os_type(sys.platform), ""


def this_host_arch() -> str:
    """The semconv ``host.arch`` of this machine, without importing ``platform``."""
    try:
        if hasattr(os, "uname"):
            return host_arch(os.uname().machine)
        environ = os.environ
        machine = environ.get("PROCESSOR_ARCHITEW6432") or environ.get("PROCESSOR_ARCHITECTURE")
        if machine:
            return host_arch(machine)
        import platform

        return host_arch(platform.machine())
    except Exception:
        return ""
