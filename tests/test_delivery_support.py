"""Helpers shared by the delivery, spool and drainer tests (no tests here).

Everything inspects real processes and real files: drainer processes are found in ``/proc``
by their command line and state dir, zombies by their state, TLS certificates are made with
the ``openssl`` command.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from support import ROOT, SRC, state_dir

DRAINER_MODULE = "otel_cli_telemetry.delivery.drainer"
DEPLOYCTL = ROOT / "examples" / "deploy" / "deployctl.py"


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, every: float = 0.02) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` passes; its last verdict."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(every)


_T = TypeVar("_T")


def call_within(guard_s: float, function: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """``function(*args, **kwargs)`` in a daemon thread; its result, or an ``AssertionError``
    if it has not returned after ``guard_s`` seconds. A liveness guard for in-process calls that
    would otherwise hang the suite, never the assertion itself: make it generous."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = function(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="call-within", daemon=True)
    thread.start()
    thread.join(guard_s)
    if thread.is_alive():
        raise AssertionError(f"{getattr(function, '__name__', function)} never returned")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]  # type: ignore[no-any-return]


def record_socket_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """From now on, every timeout a socket is given (``settimeout``, which
    ``socket.create_connection`` uses too), in order; ``None`` (blocking) is left out.
    The longest wait a client allowed itself, as it set it: read from the code, not a clock."""
    waits: list[float] = []
    original = socket.socket.settimeout

    def settimeout(sock: socket.socket, value: float | None) -> None:
        if value is not None:
            waits.append(value)
        original(sock, value)

    monkeypatch.setattr(socket.socket, "settimeout", settimeout)
    return waits


def _proc_state(pid: int) -> tuple[str, int]:
    """(state letter, parent pid) of ``pid`` from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        raw = handle.read().decode(errors="replace")
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def drainer_pids(root: str | Path | None = None) -> list[int]:
    """Live (not zombie) drainer processes, optionally only those for state dir ``root``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            if DRAINER_MODULE.encode() not in argv:
                continue
            if root is not None and str(root).encode() not in argv:
                continue
            if _proc_state(int(name))[0] == "Z":
                continue
        except (OSError, ValueError):
            continue
        found.append(int(name))
    return found


def zombie_children(parent: int | None = None) -> list[int]:
    """Children of ``parent`` (default: this process) that exited and were never reaped."""
    parent = os.getpid() if parent is None else parent
    zombies = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            state, ppid = _proc_state(int(name))
        except (OSError, ValueError):
            continue
        if state == "Z" and ppid == parent:
            zombies.append(int(name))
    return zombies


def app_env(
    cli_env: dict[str, str], app: str, endpoint: str | None, **extra: str
) -> dict[str, str]:
    """``cli_env`` with telemetry on for ``app`` (no notice) and the endpoint set."""
    env = {**cli_env, f"{app.upper()}_TELEMETRY": "1", **extra}
    if endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    return env


def spool_files(env: dict[str, str], app: str) -> list[str]:
    """Record files waiting in the app's spool, sorted."""
    folder = state_dir(env, app) / "spool"
    try:
        return sorted(n for n in os.listdir(folder) if n.endswith(".json") and n[0] != ".")
    except OSError:
        return []


def delivery_log(env: dict[str, str], app: str) -> list[dict[str, object]]:
    """The drainer's delivery log entries."""
    path = state_dir(env, app) / "delivery.jsonl"
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def breaker(env: dict[str, str], app: str) -> dict[str, object]:
    """The persisted breaker state (empty if none)."""
    path = state_dir(env, app) / "breaker.json"
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def open_breaker(env: dict[str, str], app: str, seconds: float = 3600.0) -> None:
    """Persist an open breaker, so commands spool without starting drainers."""
    root = state_dir(env, app)
    root.mkdir(parents=True, exist_ok=True)
    (root / "breaker.json").write_text(
        json.dumps({"failures": 1, "open_until": time.time() + seconds, "last_error": "test"})
    )


def admin(
    app: str, args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """Run the admin command (``python -m otel_cli_telemetry --app APP ...``) as a process."""
    return subprocess.run(
        [sys.executable, "-m", "otel_cli_telemetry", "--app", app, *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def drainer_command(env: dict[str, str], app: str, *extra: str, python: tuple[str, ...] = ()
                    ) -> list[str]:
    """The drainer's command line as the CLI builds it, with ``python`` options first."""
    return [sys.executable, *python, "-m", DRAINER_MODULE, "--app", app,
            "--state-dir", str(state_dir(env, app)), *extra]


def start_drainer(env: dict[str, str], app: str, *extra: str) -> subprocess.Popen[bytes]:
    """A drainer started by hand (as the CLI would, minus the lock hand-over)."""
    return subprocess.Popen(
        drainer_command(env, app, *extra),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def drain_with_importtime(env: dict[str, str], app: str, timeout: float = 60) -> set[str]:
    """Run one drainer to its end (as :func:`start_drainer` does) under ``python -X
    importtime``; the names of every module it imported, from first to last."""
    result = subprocess.run(
        drainer_command(env, app, python=("-X", "importtime")),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def kill_drainers(root: str | Path) -> None:
    """SIGKILL any drainer left for ``root`` (tests clean up after themselves)."""
    for pid in drainer_pids(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def command_spans(spans: list[dict[str, object]], app: str) -> list[dict[str, object]]:
    """The command spans (not phases) of ``app`` among decoded spans."""
    return [s for s in spans if str(s["name"]).startswith(app)]


# --------------------------------------------------------------------------------------------
# TLS material, made with the openssl command: a CA, and a server certificate it signed for
# localhost and 127.0.0.1.
# --------------------------------------------------------------------------------------------


class TlsFiles:
    """Paths of the test CA and the server's certificate and key."""

    def __init__(self, folder: Path) -> None:
        self.ca = folder / "ca.pem"
        self.cert = folder / "server.pem"
        self.key = folder / "server.key"

    def server_context(self) -> ssl.SSLContext:
        """The server side, for ``OtlpHttpReceiver(ssl_context=...)``."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def make_tls_files(folder: Path) -> TlsFiles:
    """Create a CA and a localhost server certificate in ``folder`` with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    files = TlsFiles(folder)
    ca_key = folder / "ca.key"
    csr = folder / "server.csr"
    ext = folder / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectKeyIdentifier=hash\n"
    )

    def openssl_run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    openssl_run(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(ca_key), "-out", str(files.ca), "-subj", "/CN=otel-cli-telemetry test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl_run(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files.key),
        "-out", str(csr), "-subj", "/CN=localhost",
    )  # fmt: skip
    openssl_run(
        "x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-out", str(files.cert), "-extfile", str(ext),
    )  # fmt: skip
    return files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a server certificate for localhost, made once per session."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


__all__ = [
    "DEPLOYCTL",
    "DRAINER_MODULE",
    "SRC",
    "TlsFiles",
    "admin",
    "app_env",
    "breaker",
    "command_spans",
    "delivery_log",
    "drainer_pids",
    "kill_drainers",
    "make_tls_files",
    "open_breaker",
    "spool_files",
    "start_drainer",
    "tls_files",
    "wait_until",
    "zombie_children",
]
