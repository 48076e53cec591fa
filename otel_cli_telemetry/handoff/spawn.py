"""Starting the detached drainer: at most one, never while the breaker is open.

Each rule answers a failure seen in another CLI's detached sender:

- Single flight (process storms): this process takes the drainer lock itself before it
  spawns and hands the locked descriptor to the child (fd 3, ``--lock-fd 3``), so between
  the spawn and the moment the drainer runs, every other command sees the lock held and
  starts nothing. If the lock is held, nothing is spawned: the holder delivers what we just
  spooled (a drainer looks at the spool again after it lets go of the lock).
- Breaker (CPU spin offline): while it is open no process is started at all.
- No terminal, no hang: ``posix_spawn`` with a new session (not killed by the terminal's
  Ctrl-C, no controlling terminal), all three standard streams on ``/dev/null``, and every
  other inheritable descriptor closed in the child, so a caller that reads our output to
  EOF (``$(mycli)``, a pipe from a parent process) never waits for the drainer.
- No zombies (long-running hosts, e.g. a test runner calling the CLI in-process): a daemon
  thread waits for each child we spawn and reaps it the moment it exits.
- Windows: ``Popen`` with :func:`windows_creation_flags` (no console window, detached, its
  own process group), no handles inherited. The lock cannot be handed over there: the CLI
  only checks it, and the drainer takes it itself (a second one exits at once).
- Frozen apps (PyInstaller and the like): ``sys.executable`` is the app itself, which would
  run the CLI again instead of the drainer, so nothing is spawned; ``flush`` still delivers.
"""

from __future__ import annotations

import _thread
import os
import sys
from typing import Any

from .._internal import debug
from ..config import Settings
from ..delivery.breaker import breaker_open
from ..delivery.lock import held_by_someone, try_lock_fd

#: Children spawned by this process that no reaper thread has collected yet.
_children: list[int] = []

#: The descriptor number the drainer finds its (already locked) lock file on.
CHILD_LOCK_FD = 3

_DETACHED_PROCESS = 0x00000008
_CREATE_NEW_PROCESS_GROUP = 0x00000200
_CREATE_NO_WINDOW = 0x08000000
#: Not used: breaking away from the CLI's job object fails (access denied) in jobs that
#: forbid it, which would make the spawn itself fail. Kept to document the choice.
_CREATE_BREAKAWAY_FROM_JOB = 0x01000000


def windows_creation_flags() -> int:
    """Flags for the drainer on Windows: no console window, detached from the CLI's console.

    ``DETACHED_PROCESS``: no console at all (no window flashes, cf. dvc#6449);
    ``CREATE_NO_WINDOW``: the same guarantee should ``DETACHED_PROCESS`` be dropped;
    ``CREATE_NEW_PROCESS_GROUP``: the terminal's Ctrl-C/Ctrl-Break does not reach it.
    """
    return _DETACHED_PROCESS | _CREATE_NEW_PROCESS_GROUP | _CREATE_NO_WINDOW


def drainer_argv(settings: Settings, lock_fd: int | None = None) -> list[str]:
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
    if lock_fd is not None:
        argv += ["--lock-fd", str(lock_fd)]
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
    """Collect exited drainers we started, without waiting (the reaper threads' backstop)."""
    if sys.platform == "win32":
        return
    for pid in list(_children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        except OSError:
            continue
        if done and pid in _children:
            _children.remove(pid)


def _reap_when_done(pid: int) -> None:
    """Wait for ``pid`` in a daemon thread, so it never lingers as ``<defunct>``."""

    def wait() -> None:
        try:
            os.waitpid(pid, 0)
        except OSError:  # reaped by someone else (the host's own os.wait(), SIG_IGN)
            pass
        try:
            _children.remove(pid)
        except ValueError:
            pass

    try:
        # A bare thread: threading.Thread.start() blocks until the new thread has run, which
        # cost ~1 ms per command on a quiet machine and up to 17 ms under load. This thread
        # only blocks in waitpid (without the GIL); at exit it is simply abandoned.
        _thread.start_new_thread(wait, ())
    except RuntimeError:  # no new threads at interpreter shutdown: init reaps it after us
        pass


def start_drainer_if_needed(settings: Settings) -> int | None:
    """Start a drainer unless one runs or the breaker is open; returns its pid."""
    paths = settings.paths
    reap_children()
    if breaker_open(paths, settings.endpoint):
        debug("breaker open: records stay in the spool")
        return None
    if not sys.executable or getattr(sys, "frozen", False):
        return None
    env = drainer_env()
    if sys.platform == "win32":
        if held_by_someone(paths.lock_file):
            return None
        return _spawn_windows(drainer_argv(settings), env)
    try:
        fd = try_lock_fd(paths.lock_file)
    except OSError:
        return None
    if fd is None:
        return None  # a drainer runs (or is being started): it will see our record
    try:
        pid = _spawn_posix(drainer_argv(settings, CHILD_LOCK_FD), env, fd)
    finally:
        os.close(fd)  # the child holds the lock now (or, if the spawn failed, nobody)
    _children.append(pid)
    _reap_when_done(pid)
    return pid


def _inheritable_fds(keep: int) -> list[int]:
    """Descriptors of this process that a child would inherit, except 0-2 and ``keep``."""
    folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    found = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        try:
            fd = int(name)
            if fd > 2 and fd != keep and os.get_inheritable(fd):
                found.append(fd)
        except (ValueError, OSError):
            continue
    return found


def _spawn_posix(argv: list[str], env: dict[str, str], lock_fd: int) -> int:
    """posix_spawn in a new session, stdio on /dev/null, the lock on fd 3, nothing else."""
    devnull = os.devnull
    actions: list[tuple[Any, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
    ]
    # Close stray inheritable descriptors first (fd 3 may be one of them), then put the
    # lock on fd 3: dup2 makes the copy inheritable, the original stays close-on-exec.
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds(keep=lock_fd)]
    actions.append((os.POSIX_SPAWN_DUP2, lock_fd, CHILD_LOCK_FD))
    try:
        return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
    except (AttributeError, NotImplementedError, TypeError):
        import subprocess

        inheritable = os.get_inheritable(lock_fd)
        os.set_inheritable(lock_fd, True)
        try:
            argv = [*argv[:-1], str(lock_fd)]  # Popen keeps the number; no dup2 there
            return subprocess.Popen(
                argv,
                env=env,
                close_fds=True,
                pass_fds=(lock_fd,),
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ).pid
        finally:
            os.set_inheritable(lock_fd, inheritable)


def _spawn_windows(argv: list[str], env: dict[str, str]) -> int:
    """Popen with no console window and no inherited handles; the drainer locks itself."""
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
