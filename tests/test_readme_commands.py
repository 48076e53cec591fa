"""Every command the READMEs tell a reader to run, run as written.

Which files: ``README.md``, ``collector/README.md``, ``examples/*/README.md``, ``docs/*.md``.
Which commands: every fenced block whose language is ``sh``. Each block runs with
``bash -euo pipefail`` from the checkout's root, as a reader would type it after ``make demo``
(the venv is *not* activated: ``PATH`` holds no venv), and must exit 0.

The blocks of one file run in order in one throwaway ``HOME`` and XDG dirs (a README is a
tutorial: the first run shows the notice, the next ones record). Loopback ports the READMEs
name are swapped for free ones, so runs never collide with a server already listening:
``127.0.0.1:4318`` (OTLP/HTTP), ``:4317`` (gRPC), ``:13133`` (health), ``:8888`` and
``:8889`` (the collector's metrics); the collector's ``OTELCOL_*`` listener variables are set
to the same free ports. A file that names ``127.0.0.1:4318`` and starts no server of its own
gets a real OTLP receiver there (``tests/otlp_receiver.py``), and must deliver at least one
span to it.

Markers: an HTML comment on the line just before the fence (invisible on GitHub), items
separated by ``;``::

    <!-- readme-test: skip: WHY -->           not run; WHY (the rest of the comment) is required
    <!-- readme-test: background; ready=URL -->
                                              a server: started in the background, the next
                                              blocks run once URL answers, stopped at the end
    <!-- readme-test: retry=SECONDS -->       re-run until it exits 0 (delivery is async)
    <!-- readme-test: expect=TEXT -->         its output (stdout + stderr) contains TEXT

New files the commands leave in the checkout and the README names (``events.jsonl``, ...) are
removed afterwards, and the test fails if a command changed a tracked file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from otlp_receiver import OtlpHttpReceiver
from support import ROOT

README_FILES = sorted(
    [
        ROOT / "README.md",
        ROOT / "collector" / "README.md",
        *(ROOT / "examples").glob("*/README.md"),
        *(ROOT / "docs").glob("*.md"),
    ]
)
#: Ports the READMEs name, replaced by free ones for each file.
PORTS = {
    4318: "OTELCOL_OTLP_HTTP_ENDPOINT",
    4317: "OTELCOL_OTLP_GRPC_ENDPOINT",
    13133: "OTELCOL_HEALTH_ENDPOINT",
    8888: "OTELCOL_TELEMETRY_PORT",
    8889: "OTELCOL_PROMETHEUS_ENDPOINT",
}
#: Variables that say how this machine reaches PyPI and the Go module proxy.
_REGISTRY_ACCESS = ("PIP_", "GO", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
BLOCK_TIMEOUT_S = 900  # `make dist`, a cold collector build: long, but bounded
_FENCE = re.compile(
    r"(?:<!--\s*readme-test:(?P<marker>.*?)-->\s*\n)?^```sh[ \t]*\n(?P<body>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass
class Block:
    """One fenced ``sh`` block and its markers."""

    path: Path
    line: int
    body: str
    skip: str | None = None
    background: bool = False
    ready: str | None = None
    retry_s: float = 0.0
    expect: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The ``sh`` blocks of ``path``, with their markers (an unknown marker is an error)."""
    text = path.read_text()
    blocks = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start("body"))  # the fence's line, from 1
        block = Block(path, line, match.group("body"))
        marker = (match.group("marker") or "").strip()
        items = [marker] if marker.startswith("skip") else marker.split(";")
        for raw_item in items:
            item = raw_item.strip()
            if not item:
                continue
            if item.startswith("skip"):
                key, value = "skip", item.partition(":")[2]
            else:
                key, _, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if key == "skip":
                assert value, f"{block.where}: `skip:` needs a reason"
                block.skip = value
            elif key == "background":
                block.background = True
            elif key == "ready":
                block.ready = value
            elif key == "retry":
                block.retry_s = float(value)
            elif key == "expect":
                block.expect.append(value)
            else:
                raise AssertionError(f"{block.where}: unknown readme-test marker {item!r}")
        assert not block.background or block.ready, f"{block.where}: background needs ready=URL"
        blocks.append(block)
    return blocks


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _reader_path() -> str:
    """PATH without any virtualenv: the commands must not depend on an activated venv."""
    venvs = {str(ROOT / ".venv"), os.environ.get("VIRTUAL_ENV", "//none")}
    keep = [
        entry
        for entry in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if entry and not any(entry.startswith(v) for v in venvs)
    ]
    return os.pathsep.join([*keep, "/usr/local/go/bin"])


def _untracked() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return set(filter(None, out.split("\0")))


def _tracked_changes() -> str:
    return subprocess.run(
        ["git", "diff", "--stat", "HEAD"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout


@pytest.fixture
def checkout_watch(readme: Path) -> Iterator[None]:
    """Removes the files the README's commands left in the checkout; fails if they changed
    tracked files.

    Only new files the README names (``events.jsonl``) are removed: README tests running in
    parallel must not delete each other's files.
    """
    named = "".join(block.body for block in parse_blocks(readme))
    before_untracked, before_changes = _untracked(), _tracked_changes()
    yield
    for name in _untracked() - before_untracked:
        target = ROOT / name
        if name in named and (target.is_file() or target.is_symlink()):
            target.unlink()
    assert _tracked_changes() == before_changes, "README commands changed tracked files"


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"background server exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def _run(block: Block, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + block.retry_s
    while True:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
        if result.returncode == 0 or time.monotonic() >= deadline:
            return result
        time.sleep(0.5)


def _params() -> list[object]:
    """One test per file with a block to run; files that build or run the collector carry
    the `collector` mark."""
    return [
        pytest.param(
            path,
            id=str(path.relative_to(ROOT)),
            marks=[pytest.mark.collector] if "collector/build.sh" in path.read_text() else [],
        )
        for path in README_FILES
        if any(block.skip is None for block in parse_blocks(path))
    ]


@pytest.mark.parametrize("readme", _params())
@pytest.mark.usefixtures("checkout_watch")
def test_readme_commands_run_as_written(readme: Path, tmp_path: Path) -> None:
    runnable = [b for b in parse_blocks(readme) if b.skip is None]
    ports = {old: _free_port() for old in PORTS}
    env = {
        "PATH": _reader_path(),
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
        "GOPATH": os.environ.get("GOPATH", str(Path.home() / "go")),
        "GOMODCACHE": os.environ.get("GOMODCACHE", str(Path.home() / "go" / "pkg" / "mod")),
        "GOCACHE": os.environ.get("GOCACHE", str(Path.home() / ".cache" / "go-build")),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    # The build caches (collector, Go, pip) are the machine's: a throwaway HOME must not
    # mean a cold 5-minute collector build.
    # How this machine reaches the registries (proxies, certificates, mirrors) stays.
    for name, value in os.environ.items():
        if name.startswith(_REGISTRY_ACCESS) or name.lower() in (
            "http_proxy",
            "https_proxy",
            "no_proxy",
        ):
            env.setdefault(name, value)
    Path(env["HOME"]).mkdir()
    for old, name in PORTS.items():
        env[name] = str(ports[old]) if name.endswith("_PORT") else f"127.0.0.1:{ports[old]}"

    def localise(text: str) -> str:
        for old, new in ports.items():
            text = re.sub(rf"(127\.0\.0\.1|localhost):{old}\b", rf"\g<1>:{new}", text)
        return text

    servers: list[tuple[subprocess.Popen[bytes], Path]] = []
    wants_receiver = not any(b.background for b in runnable) and any(
        "127.0.0.1:4318" in b.body for b in runnable
    )
    receiver = OtlpHttpReceiver(port=ports[4318]) if wants_receiver else None
    try:
        for block in runnable:
            script = localise(block.body)
            if block.background:
                log = tmp_path / f"server-{block.line}.log"
                with log.open("wb") as out:
                    server = subprocess.Popen(
                        ["bash", "-euo", "pipefail", "-c", script],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                servers.append((server, log))
                assert block.ready
                _wait_ready(localise(block.ready), server, log, timeout=BLOCK_TIMEOUT_S)
                continue
            result = _run(block, script, env)
            output = result.stdout + result.stderr
            assert result.returncode == 0, (
                f"{block.where}: exit {result.returncode}\n--- block\n{script}\n--- output\n"
                f"{output[-4000:]}"
            )
            for text in block.expect:
                assert text in output, f"{block.where}: {text!r} not in the output:\n{output}"
        if receiver is not None:
            spans = receiver.wait_for_spans(1, timeout=30)
            assert spans, f"{readme.relative_to(ROOT)}: nothing arrived at the OTLP endpoint"
    finally:
        for server, _ in servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()
        if receiver is not None:
            _wait_for_drainers(env)
            receiver.close()
        shutil.rmtree(tmp_path / "state", ignore_errors=True)


def _wait_for_drainers(env: dict[str, str], timeout: float = 20) -> None:
    """Let detached drainers finish before their state dirs are removed."""
    from otel_cli_telemetry.delivery.lock import held_by_someone

    deadline = time.monotonic() + timeout
    locks = list(Path(env["XDG_STATE_HOME"]).glob("*/otel-cli-telemetry/drainer.lock"))
    while time.monotonic() < deadline and any(held_by_someone(str(p)) for p in locks):
        time.sleep(0.1)


def test_markers_parse_and_every_skip_has_a_reason() -> None:
    """A typo in a marker fails here, not silently at run time."""
    blocks = [b for path in README_FILES for b in parse_blocks(path)]
    assert len(blocks) >= 10
    assert all(b.skip is None or b.skip.strip() for b in blocks)


def test_the_marker_syntax_is_what_the_docstring_says(tmp_path: Path) -> None:
    sample = tmp_path / "x.md"
    sample.write_text(
        "text\n<!-- readme-test: retry=5; expect=hello -->\n```sh\necho hello\n```\n"
        "<!-- readme-test: skip: this suite -->\n```sh\nmake test\n```\n"
        "<!-- readme-test: background; ready=http://127.0.0.1:13133/ -->\n```sh\nsleep 9\n```\n"
        "```python\nprint()\n```\n```sh\ntrue\n```\n"
    )
    retry, skipped, server, plain = parse_blocks(sample)
    assert (retry.retry_s, retry.expect, retry.body) == (5.0, ["hello"], "echo hello\n")
    assert skipped.skip == "this suite"
    assert server.background
    assert server.ready == "http://127.0.0.1:13133/"
    assert (plain.skip, plain.background, plain.expect, plain.line) == (None, False, [], 17)
    sample.write_text("<!-- readme-test: bogus -->\n```sh\ntrue\n```\n")
    with pytest.raises(AssertionError, match="unknown readme-test marker"):
        parse_blocks(sample)
