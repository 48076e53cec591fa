"""Tests for capture.environment: CI providers, AI agents, terminals, OS type and arch."""

from __future__ import annotations

import io
import os
import sys

import pytest

from otel_cli_telemetry.capture.environment import (
    GENERIC_CI,
    OTHER_AGENT,
    detect_agent,
    detect_ci,
    host_arch,
    is_interactive,
    os_type,
    os_type_and_version,
    this_host_arch,
)

# --- CI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "provider"),
    [
        ({"GITHUB_ACTIONS": "true", "CI": "true"}, "github_actions"),
        ({"GITLAB_CI": "true", "CI": "true"}, "gitlab_ci"),
        ({"CIRCLECI": "true", "CI": "true"}, "circleci"),
        ({"TRAVIS": "true", "CI": "true"}, "travis_ci"),
        ({"TF_BUILD": "True", "AGENT_NAME": "Hosted Agent"}, "azure_pipelines"),
        ({"JENKINS_URL": "https://ci.example.com/", "BUILD_ID": "42"}, "jenkins"),
        ({"BUILD_ID": "42", "JENKINS_HOME": "/var/jenkins_home"}, "jenkins"),
        ({"BUILDKITE": "true", "CI": "true"}, "buildkite"),
        ({"TEAMCITY_VERSION": "2023.11.1"}, "teamcity"),
        ({"BITBUCKET_BUILD_NUMBER": "17", "CI": "true"}, "bitbucket_pipelines"),
        ({"APPVEYOR": "True", "CI": "True"}, "appveyor"),
        ({"CODEBUILD_BUILD_ID": "proj:1a2b", "AWS_REGION": "eu-west-1"}, "aws_codebuild"),
        ({"BUILDER_OUTPUT": "/builder/outputs"}, "google_cloud_build"),
        ({"DRONE": "true", "CI": "true"}, "drone"),
        ({"CIRRUS_CI": "true"}, "cirrus_ci"),
        ({"SEMAPHORE": "true"}, "semaphore"),
        ({"BITRISE_IO": "true"}, "bitrise"),
        ({"bamboo_planKey": "PROJ-PLAN"}, "bamboo"),
        ({"GO_PIPELINE_LABEL": "12"}, "gocd"),
        ({"HARNESS_BUILD_ID": "7"}, "harness"),
        ({"CI": "true"}, GENERIC_CI),
        ({"CI": "1"}, GENERIC_CI),
        ({"CI": "woodpecker"}, GENERIC_CI),
        ({"CONTINUOUS_INTEGRATION": "true"}, GENERIC_CI),
    ],
)
def test_ci_providers(environ: dict[str, str], provider: str) -> None:
    assert detect_ci(environ) == provider


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"CI": "false"},
        {"CI": "FALSE"},
        {"CI": "0"},
        {"CI": ""},
        {"CI": "no"},
        {"CI": " off "},
        {"GITHUB_ACTIONS": "false"},
        {"BUILD_ID": "42"},  # Jenkins needs JENKINS_HOME too
        {"JENKINS_HOME": "/var/jenkins_home"},
        {"GITHUB_TOKEN": "x", "GITLAB_TOKEN": "y"},
        {"HOME": "/home/x", "PATH": "/usr/bin"},
    ],
)
def test_not_ci(environ: dict[str, str]) -> None:
    assert detect_ci(environ) is None


def test_specific_provider_wins_over_generic_ci() -> None:
    assert detect_ci({"CI": "true", "GITLAB_CI": "true"}) == "gitlab_ci"
    # CI=false is a common way to relax build warnings; the job still runs in CI.
    assert detect_ci({"CI": "false", "GITHUB_ACTIONS": "true"}) == "github_actions"


def test_ci_priority_follows_the_table_order() -> None:
    both = {"GITHUB_ACTIONS": "true", "JENKINS_URL": "https://j/"}
    assert detect_ci(both) == "github_actions"


def test_detect_ci_accepts_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDKITE", "true")
    assert detect_ci(os.environ) == "buildkite"


# --- agents ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "agent"),
    [
        ({"CLAUDECODE": "1"}, "claude_code"),
        ({"CLAUDE_CODE": "1"}, "claude_code"),
        ({"CLAUDECODE": "1", "CLAUDE_CODE_IS_COWORK": "1"}, "claude_cowork"),
        ({"CODEX_SANDBOX": "seatbelt"}, "codex"),
        ({"CODEX_CI": "1"}, "codex"),
        ({"CODEX_THREAD_ID": "t_1"}, "codex"),
        ({"CODEX_SANDBOX_NETWORK_DISABLED": "1"}, "codex"),
        ({"GEMINI_CLI": "1"}, "gemini_cli"),
        ({"COPILOT_AGENT_SESSION_ID": "abc"}, "github_copilot"),
        ({"COPILOT_MODEL": "gpt-5"}, "github_copilot"),
        ({"COPILOT_ALLOW_ALL": "true"}, "github_copilot"),
        ({"AMP_CURRENT_THREAD_ID": "T-1"}, "amp"),
        ({"GOOSE_TERMINAL": "1"}, "goose"),
        ({"OPENCODE_CLIENT": "cli"}, "opencode"),
        ({"OPENCODE": "1"}, "opencode"),
        ({"AUGMENT_AGENT": "1"}, "augment"),
        ({"ANTIGRAVITY_AGENT": "1"}, "antigravity"),
        ({"CLINE_ACTIVE": "true"}, "cline"),
        ({"ROO_ACTIVE": "true"}, "roo_code"),
        ({"QWEN_CODE": "1"}, "qwen_code"),
        ({"TRAE_AI_SHELL_ID": "x"}, "trae"),
        ({"CURSOR_AGENT": "1"}, "cursor"),
        ({"CURSOR_TRACE_ID": "abc", "PAGER": "head -n 10000 | cat"}, "cursor"),
        ({"CODEIUM_EDITOR_APP_ROOT": "/Applications/Windsurf.app"}, "windsurf"),
        ({"REPL_ID": "abc-123"}, "replit"),
        ({"TERM_PROGRAM": "kiro"}, "kiro"),
        ({"AWS_EXECUTION_ENV": "AmazonQ-For-CLI Version/1.0"}, "kiro"),
        ({"AI_AGENT": "claude-code"}, "claude_code"),
        ({"AI_AGENT": "cursor-cli"}, "cursor"),
        ({"AI_AGENT": "devin@1"}, "devin"),
        ({"AI_AGENT": "github-copilot-cli"}, "github_copilot"),
        ({"AI_AGENT": " Aider "}, "aider"),
        ({"AI_AGENT": "my-secret-internal-bot@2.0"}, OTHER_AGENT),
        ({"AGENT": "goose"}, "goose"),
        ({"AGENT": "amp", "AMP_CURRENT_THREAD_ID": "T-1"}, "amp"),
    ],
)
def test_agents(environ: dict[str, str], agent: str) -> None:
    assert detect_agent(environ) == agent


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"CURSOR_TRACE_ID": "abc"},  # a person typing in Cursor's terminal
        {"AGENT": "jenkins-agent-3"},  # the generic name, an unknown value
        {"AGENT": ""},
        {"AI_AGENT": "  "},
        {"AIDER_MODEL": "sonnet", "AIDER_DARK_MODE": "true"},  # the user's aider config
        {"CODEX_HOME": "/home/x/.codex"},  # Codex configuration, not a Codex run
        {"GEMINI_CLI_HOME": "/x"},
        {"COPILOT_GITHUB_TOKEN": "x"},  # exported in shell profiles
        {"CLAUDECODE": "0"},
        {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"},
        {"TERM_PROGRAM": "vscode"},
    ],
)
def test_no_agent(environ: dict[str, str]) -> None:
    assert detect_agent(environ) is None


def test_agent_priority() -> None:
    # Claude Code started from Cursor's (or Windsurf's, Replit's) terminal is Claude Code.
    inside_ide = {
        "CLAUDECODE": "1",
        "CURSOR_TRACE_ID": "abc",
        "PAGER": "head -n 10000 | cat",
        "CODEIUM_EDITOR_APP_ROOT": "/x",
        "REPL_ID": "r",
        "TERM_PROGRAM": "kiro",
    }
    assert detect_agent(inside_ide) == "claude_code"
    # The explicit conventions come first.
    assert detect_agent({"AI_AGENT": "gemini-cli", "CLAUDECODE": "1"}) == "gemini_cli"
    assert detect_agent({"AGENT": "goose", "CLAUDECODE": "1"}) == "goose"
    assert detect_agent({"AGENT": "unknown-thing", "CLAUDECODE": "1"}) == "claude_code"


def test_agent_ids_never_echo_environment_values() -> None:
    value = "https://user:token@example.com"
    assert detect_agent({"AI_AGENT": value}) == OTHER_AGENT
    assert detect_agent({"AGENT": value}) is None


# --- terminals ---------------------------------------------------------------------------------


def test_interactive_with_a_real_pty() -> None:
    pytest.importorskip("pty")
    master, slave = os.openpty()
    try:
        with open(slave, closefd=False) as stdin, open(slave, "w", closefd=False) as stdout:
            assert is_interactive(stdin, stdout)
    finally:
        os.close(master)
        os.close(slave)


def test_not_interactive_with_pipes() -> None:
    read_fd, write_fd = os.pipe()
    try:
        with open(read_fd, closefd=False) as stdin, open(write_fd, "w", closefd=False) as stdout:
            assert not is_interactive(stdin, stdout)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_not_interactive_when_only_one_side_is_a_tty() -> None:
    pytest.importorskip("pty")
    master, slave = os.openpty()
    read_fd, write_fd = os.pipe()
    try:
        with open(slave, closefd=False) as tty, open(write_fd, "w", closefd=False) as pipe:
            assert not is_interactive(tty, pipe)
            assert not is_interactive(pipe, tty)
    finally:
        for fd in (master, slave, read_fd, write_fd):
            os.close(fd)


class _Broken:
    def isatty(self) -> bool:
        raise OSError("bad file descriptor")


def test_not_interactive_for_none_closed_or_broken_streams() -> None:
    closed = io.StringIO()
    closed.close()
    assert not is_interactive(None, sys.stdout)
    assert not is_interactive(sys.stdin, None)
    assert not is_interactive(closed, closed)
    assert not is_interactive(_Broken(), _Broken())
    assert not is_interactive(io.StringIO(), io.StringIO())


# --- OS and architecture -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("machine", "arch"),
    [
        ("x86_64", "amd64"),
        ("AMD64", "amd64"),
        ("amd64", "amd64"),
        ("x64", "amd64"),
        ("EM64T", "amd64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("ARM64", "arm64"),
        ("arm64e", "arm64"),
        ("armv7l", "arm32"),
        ("armv6l", "arm32"),
        ("armv8l", "arm32"),
        ("arm", "arm32"),
        ("i386", "x86"),
        ("i686", "x86"),
        ("x86", "x86"),
        ("ppc64le", "ppc64"),
        ("ppc64", "ppc64"),
        ("ppc", "ppc32"),
        ("powerpc", "ppc32"),
        ("s390x", "s390x"),
        ("ia64", "ia64"),
        ("IA64", "ia64"),
        ("riscv64", "riscv64"),
        ("Loong64", "loong64"),
        (" x86_64\n", "amd64"),
        ("", ""),
    ],
)
def test_host_arch(machine: str, arch: str) -> None:
    assert host_arch(machine) == arch


@pytest.mark.parametrize(
    ("system", "kind"),
    [
        ("Linux", "linux"),
        ("linux", "linux"),
        ("Darwin", "darwin"),
        ("darwin", "darwin"),
        ("Windows", "windows"),
        ("win32", "windows"),
        ("cygwin", "windows"),
        ("MSYS_NT-10.0", "windows"),
        ("FreeBSD", "freebsd"),
        ("freebsd14", "freebsd"),
        ("OpenBSD", "openbsd"),
        ("NetBSD", "netbsd"),
        ("DragonFly", "dragonflybsd"),
        ("SunOS", "solaris"),
        ("sunos5", "solaris"),
        ("AIX", "aix"),
        ("aix7", "aix"),
        ("HP-UX", "hpux"),
        ("OS/390", "zos"),
        ("z/OS", "zos"),
        ("Haiku", "haiku"),
        ("emscripten", "emscripten"),
    ],
)
def test_os_type(system: str, kind: str) -> None:
    assert os_type(system) == kind


def test_os_type_and_version_here() -> None:
    kind, version = os_type_and_version()
    assert kind == os_type(sys.platform)
    assert isinstance(version, str)
    if hasattr(os, "uname"):
        assert version in (os.uname().release, os.uname().version)


def test_os_type_and_version_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> object:
        raise OSError("no uname")

    monkeypatch.setattr(os, "uname", broken, raising=False)
    kind, version = os_type_and_version()
    assert kind == os_type(sys.platform)
    assert version == ""


def test_this_host_arch_matches_platform() -> None:
    import platform

    assert this_host_arch() == host_arch(platform.machine())


def test_hot_path_imports_nothing_heavy() -> None:
    import subprocess

    code = (
        "import otel_cli_telemetry.capture.environment as e; "
        "import otel_cli_telemetry.privacy.scrub as s; "
        "e.detect_ci({}); e.detect_agent({}); e.os_type_and_version(); e.this_host_arch(); "
        "s.scrub_value('deploy'); "
        "heavy = ('platform', 'socket', 're', 'typing', 'getpass'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    # The parent packages are stubbed out (no pathlib: it imports re), so only these two
    # modules and their first calls are observed.
    stub = (
        "import sys, types; "
        "src = sys.argv[1]; "
        "[sys.modules.__setitem__(n, types.ModuleType(n)) for n in "
        "('otel_cli_telemetry', 'otel_cli_telemetry.capture')]; "
        "sys.modules['otel_cli_telemetry'].__path__ = [src]; "
        "sys.modules['otel_cli_telemetry.capture'].__path__ = [src + '/capture']; "
    )
    import otel_cli_telemetry.privacy.scrub as scrub_module

    src = os.path.dirname(os.path.dirname(scrub_module.__file__))
    env = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME", "USERNAME")}
    result = subprocess.run(
        [sys.executable, "-c", stub + code, src],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert result.stdout.strip() == "[]"
