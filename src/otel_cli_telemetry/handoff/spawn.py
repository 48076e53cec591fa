"""Starting the detached drainer: at most one, never while the breaker is open.

POSIX: ``posix_spawn`` with a new session (not killed by the terminal's Ctrl-C), all three
standard streams on ``/dev/null`` (it can never write to the user's terminal), and no
``subprocess`` import. The child is reaped by this process if it is still alive later (no
zombies in long-running hosts), else by init once this CLI exits. Windows: ``Popen`` with
:func:`windows_creation_flags` (no console window, detached, its own process group).
"""

from __future__ import annotations

import os
import sys

from .._internal import debug
from ..config import Settings
from ..delivery.breaker import breaker_open
from ..delivery.lock import held_by_someone

#: Children spawned by this process, reaped without blocking on the next spawn or at exit.
_children: list[int] = []

_DETACHED_PROCESS = 0x00000008
_CREATE_NEW_PROCESS_GROUP = 0x00000200
_CREATE_NO_WINDOW = 0x08000000
_CREATE_BREAKAWAY_FROM_JOB = 0x01000000


def windows_creation_flags() -> int:
    """Flags for the drainer on Windows: no console window, detached from the CLI's console."""
    return _DETACHED_PROCESS | _CREATE_NEW_PROCESS_GROUP | _CREATE_NO_WINDOW


def drainer_argv(settings: Settings) -> list[str]:
    """The drainer's command line: this interpreter, our module, the app and its state dir."""
    argv = [
        sys.executable,
        "-m",
        "otel_cli_telemetry.delivery.drainer",
        "--app",
        settings.app,
        "--state-dir",
        settings.paths.root,
        "--protocol",
        settings.protocol,
    ]
    if settings.options.endpoint:
        argv += ["--endpoint", settings.options.endpoint]
    return argv


def drainer_env() -> dict[str, str]:
    """The CLI's environment (OTEL_* decide the endpoint), with our package importable."""
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    existing = env.get("PYTHONPATH", "")
    if package_parent not in existing.split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, existing) if p)
    return env


def reap_children() -> None:
    """Collect exited drainers we started, without waiting."""
    if sys.platform == "win32":
        return
    for pid in list(_children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _children.remove(pid)


def start_drainer_if_needed(settings: Settings) -> int | None:
    """Start a drainer unless one runs or the breaker is open; returns its pid."""
    paths = settings.paths
    reap_children()
    if breaker_open(paths):
        debug("breaker open: records stay in the spool")
        return None
    if held_by_someone(paths.lock_file):
        return None
    if not sys.executable:
        return None
    return _spawn(drainer_argv(settings), drainer_env())


def _spawn(argv: list[str], env: dict[str, str]) -> int:
    if sys.platform == "win32":
        import subprocess

        process = subprocess.Popen(
            argv,
            env=env,
            close_fds=True,
            creationflags=windows_creation_flags(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return process.pid
    devnull = os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
    ]
    try:
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
    except (AttributeError, NotImplementedError, TypeError):
        import subprocess

        pid = subprocess.Popen(
            argv,
            env=env,
            close_fds=True,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).pid
    _children.append(pid)
    return pid
