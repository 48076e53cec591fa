"""``flush`` and ``doctor`` as real processes, and the standard exporter variables (TLS with a
custom CA, headers, gzip) end to end through a CLI's detached drainer."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from test_delivery_support import (
    TlsFiles,
    admin,
    app_env,
    command_spans,
    kill_drainers,
    open_breaker,
    spool_files,
    start_drainer,
    tls_files,  # noqa: F401  (fixture)
    wait_until,
)

from otlp_receiver import OtlpHttpReceiver, SilentServer, refused_endpoint
from support import run_app, state_dir, wait_for_drainer

APP = "clickapp"


def spool_some(env: dict[str, str], n: int) -> None:
    """``n`` records in the spool, no drainer started (the breaker is held open)."""
    open_breaker(env, APP)
    for _ in range(n):
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
    assert len(spool_files(env, APP)) == n


# -- flush ----------------------------------------------------------------------------------


def test_flush_shows_progress_on_a_terminal_only(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        spool_some(env, 3)
        master, slave = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "otel_cli_telemetry", "--app", APP, "flush"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
        os.close(slave)
        stdout, _ = process.communicate(timeout=60)
        terminal = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
        os.close(master)
        assert process.returncode == 0
        assert stdout == b"Delivered 3 record(s); 0 waiting.\n"
        assert b"[##############################] 3/3 delivered" in terminal
        assert len(command_spans(rx.spans(), APP)) == 3


def test_flush_with_nothing_to_do(cli_env: dict[str, str]) -> None:
    env = app_env(cli_env, APP, refused_endpoint())
    result = admin(APP, ["flush"], env)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"Nothing to deliver.\n", b"")


def test_flush_without_an_endpoint(cli_env: dict[str, str]) -> None:
    result = admin(APP, ["flush"], app_env(cli_env, APP, None))
    assert result.returncode == 1
    assert b"No endpoint configured" in result.stdout


def test_flush_against_a_dead_endpoint_keeps_everything(cli_env: dict[str, str]) -> None:
    env = app_env(cli_env, APP, refused_endpoint())
    spool_some(env, 2)
    result = admin(APP, ["flush"], env)
    assert result.returncode == 1
    assert result.stdout.startswith(
        b"Delivered 0 record(s); 2 waiting. Last error: ConnectionRefusedError"
    )
    assert result.stderr == b""
    assert len(spool_files(env, APP)) == 2


def test_flush_waits_for_a_running_drainer_then_finishes_the_job(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        spool_some(env, 2)
        (state_dir(env, APP) / "breaker.json").unlink()
        rx.set_mode("slow", delay=1.0)
        drainer = start_drainer(env, APP)
        try:
            rx.wait_for_requests(1)
            rx.set_mode("ok")
            result = admin(APP, ["flush", "--timeout", "20"], env)
            assert drainer.wait(timeout=20) == 0
        finally:
            kill_drainers(state_dir(env, APP))
        assert result.returncode == 0, result
        assert result.stdout.endswith(b"0 waiting.\n")
        assert spool_files(env, APP) == []
        assert len({s["span_id"] for s in command_spans(rx.spans(), APP)}) == 2


# -- doctor ---------------------------------------------------------------------------------


def test_doctor_ok(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint, OTEL_EXPORTER_OTLP_HEADERS="api-key=k1")
        result = admin(APP, ["doctor"], env)
        (request,) = rx.requests
    out = result.stdout.decode()
    assert result.returncode == 0, out
    assert f"traces URL: {rx.endpoint}/v1/traces" in out
    assert "TLS: none (plain http)" in out
    assert "OK: accepted an empty export in" in out
    assert "breaker: closed, 0 consecutive failure(s)" in out
    assert "spool: 0 record(s) waiting, 0 drop(s) not yet reported; drainer idle" in out
    assert request.headers["api-key"] == "k1"
    assert result.stderr == b""


def test_doctor_auth_hint(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        rx.set_mode("status", status=401)
        result = admin(APP, ["doctor"], app_env(cli_env, APP, rx.endpoint))
    assert result.returncode == 1
    assert b"FAILED: HTTP 401" in result.stdout
    assert b"authentication failed: check OTEL_EXPORTER_OTLP_HEADERS" in result.stdout


def test_doctor_refused_and_breaker_and_spool_state(cli_env: dict[str, str]) -> None:
    env = app_env(cli_env, APP, refused_endpoint())
    spool_some(env, 2)
    result = admin(APP, ["doctor"], env)
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "Connection refused" in out
    assert "nothing listens there" in out
    assert "breaker: open for" in out
    assert "1 consecutive failure(s); last error: test" in out
    assert "spool: 2 record(s) waiting" in out


def test_doctor_silent_endpoint_is_bounded(cli_env: dict[str, str]) -> None:
    with SilentServer() as silent:
        env = app_env(cli_env, APP, silent.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="1000")
        started = time.monotonic()
        result = admin(APP, ["doctor"], env)
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert b"no answer in time" in result.stdout
    assert elapsed < 4


def test_doctor_tls(cli_env: dict[str, str], tls_files: TlsFiles) -> None:  # noqa: F811
    with OtlpHttpReceiver(ssl_context=tls_files.server_context()) as rx:
        trusted = app_env(
            cli_env, APP, rx.endpoint, OTEL_EXPORTER_OTLP_CERTIFICATE=str(tls_files.ca)
        )
        result = admin(APP, ["doctor"], trusted)
        assert result.returncode == 0, result
        assert f"TLS: verified against {tls_files.ca}".encode() in result.stdout
        result = admin(APP, ["doctor"], app_env(cli_env, APP, rx.endpoint))
        assert result.returncode == 1
        assert b"TLS: verified against the system store" in result.stdout
        assert b"CERTIFICATE_VERIFY_FAILED" in result.stdout
        assert b"set OTEL_EXPORTER_OTLP_CERTIFICATE" in result.stdout


def test_doctor_without_endpoint(cli_env: dict[str, str]) -> None:
    result = admin(APP, ["doctor"], app_env(cli_env, APP, None))
    assert result.returncode == 0
    assert b"endpoint: none configured" in result.stdout


# -- the standard variables, end to end -----------------------------------------------------


def test_tls_headers_and_gzip_through_the_drainer(
    cli_env: dict[str, str],
    tls_files: TlsFiles,  # noqa: F811
) -> None:
    with OtlpHttpReceiver(ssl_context=tls_files.server_context()) as rx:
        env = app_env(
            cli_env,
            APP,
            rx.endpoint,
            OTEL_EXPORTER_OTLP_CERTIFICATE=str(tls_files.ca),
            OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20t0ken,x-team=cli",
            OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
        )
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
        rx.wait_for_spans(2, timeout=20)
        assert wait_until(lambda: len(rx.requests) >= 2)
        wait_for_drainer(env, APP)
        requests = rx.requests
    assert {r.signal for r in requests} == {"traces", "metrics"}
    for request in requests:
        assert request.headers["authorization"] == "Bearer t0ken"
        assert request.headers["x-team"] == "cli"
        assert request.headers["content-encoding"] == "gzip"
    assert spool_files(env, APP) == []


def test_an_untrusted_certificate_keeps_the_data(
    cli_env: dict[str, str],
    tls_files: TlsFiles,  # noqa: F811
) -> None:
    with OtlpHttpReceiver(ssl_context=tls_files.server_context()) as rx:
        env = app_env(cli_env, APP, rx.endpoint)  # system store only
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
        wait_for_drainer(env, APP)
        assert wait_until(lambda: len(spool_files(env, APP)) == 1)
        assert rx.spans() == []
        trusted = {**env, "OTEL_EXPORTER_OTLP_CERTIFICATE": str(tls_files.ca)}
        result = admin(APP, ["flush"], trusted)
        assert result.returncode == 0, result
        assert len(command_spans(rx.spans(), APP)) == 1
