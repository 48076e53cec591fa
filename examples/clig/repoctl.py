"""repoctl: a typer CLI reproducing the "Collecting analytics" chapter of the CLI guidelines.

What the chapter asks for, and where it is here:

- OS and version: built in (``os.type``, ``os.version``, ``service.version`` on the resource).
- Success rate and exit codes: every command span carries ``process.exit.code`` and an
  ERROR status when it is not 0; ``cli_telemetry.command.duration`` has the exit code as a
  dimension.
- An event even on a catastrophic failure: ``repoctl crash`` raises; the SDK still records
  the command (``error.type`` = the exception's class, never its message or traceback).
- No hang when the analytics API is slow: the SDK spools the record and a detached drainer
  sends it (in CI: in-process within a hard budget); the command never waits.
- Flags usage: ``cli_telemetry.flags`` carries option names, never their values.
- Versions of the tools the CLI depends on: ``deps.git.version``, computed OFF the hot path.
  The command only reads a small cache file; when it is missing or older than a day, a
  detached background process runs ``git --version`` and rewrites it for later runs. The
  first run after a refresh is due sends no version rather than wait for git.

Run: ``.venv/bin/python examples/clig/repoctl.py sync --remote origin --dry-run``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

#: The hidden argument the background refresh runs this file with (before any telemetry).
REFRESH_ARG = "__refresh-deps-cache__"
CACHE_MAX_AGE_S = 24 * 3600
REFRESH_MARKER_MAX_AGE_S = 60


def _cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "repoctl" / "deps.json"


def _tool_version(program: str) -> str:
    """``"2.43.0"`` from ``git --version``; ``"not_installed"`` or ``"unknown"`` otherwise.

    Only the version number is kept: the rest of the output could name paths or builds.
    """
    try:
        out = subprocess.run(
            [program, "--version"], capture_output=True, timeout=5, check=False, text=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "not_installed"
    match = re.search(r"\d+(?:\.\d+)+", out)
    return match.group(0) if match else "unknown"


def refresh_dependency_cache() -> None:
    """The background step: measure dependency versions, write the cache atomically."""
    path = _cache_path()
    marker = path.with_suffix(".refreshing")
    try:
        versions = {"deps.git.version": _tool_version("git")}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"checked_at": time.time(), "versions": versions}))
        os.replace(tmp, path)
    finally:
        marker.unlink(missing_ok=True)


def cached_dependency_versions() -> tuple[dict[str, str], bool]:
    """(versions from the cache, whether a refresh is due): one small file read, no process."""
    try:
        data = json.loads(_cache_path().read_text())
        versions = {str(k): str(v) for k, v in data["versions"].items()}
        return versions, time.time() - float(data["checked_at"]) > CACHE_MAX_AGE_S
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, True


def start_refresh() -> None:
    """Start the detached refresh unless one started within the last minute."""
    path = _cache_path()
    marker = path.with_suffix(".refreshing")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if time.time() - marker.stat().st_mtime < REFRESH_MARKER_MAX_AGE_S:
                return
            marker.unlink()
        except FileNotFoundError:
            pass
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), REFRESH_ARG],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        pass  # no cache this time; the CLI's own work is what matters


if sys.argv[1:] == [REFRESH_ARG]:  # the background step: no telemetry, no CLI
    refresh_dependency_cache()
    sys.exit(0)

import typer  # noqa: E402

import otel_cli_telemetry as telemetry  # noqa: E402

telemetry.init(
    app="repoctl",
    version="2.1.0",
    fields={
        "deps.git.version": telemetry.Identifier(
            "version of git on PATH (from a cache refreshed daily in the "
            "background, never measured during a command)"
        ),
    },
    policy_url="https://example.com/repoctl/telemetry",
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)


@app.callback()
def main() -> None:
    """Keep repositories in sync (an example for otel_cli_telemetry)."""
    if not telemetry.status()["enabled"]:
        return  # nothing is sent: no reason to look at dependencies either
    versions, due = cached_dependency_versions()
    telemetry.set_attributes(versions)
    if due:
        start_refresh()


@app.command()
def status() -> None:
    """Show the repository's state."""
    typer.echo("clean")


@app.command()
def sync(
    remote: str = typer.Option("origin", "--remote", "-r", help="Remote name or URL."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing."),
    fail: int = typer.Option(0, "--fail", hidden=True, help="Exit with this code."),
) -> None:
    """Fetch and push to REMOTE."""
    with telemetry.phase("fetch"):
        time.sleep(0.005)
    if fail:
        typer.echo(f"sync with {remote} failed", err=True)
        raise typer.Exit(fail)
    typer.echo(f"synced with {remote}{' (dry run)' if dry_run else ''}")


@app.command()
def crash() -> None:
    """Fail the hard way (an uncaught exception) to show the event still gets out."""
    raise RuntimeError(f"corrupt index at {os.path.expanduser('~')}/work/.repo/index")


if __name__ == "__main__":
    app()
