"""releasectl: a click CLI that runs another CLI, with both in one trace (W3C trace context).

``releasectl release`` runs ``publishtool publish`` (examples/propagation/publishtool.py)
inside the phase ``child``, with ``env=telemetry.subprocess_env()``: the child's command span
becomes a child of that phase span, so a trace backend shows the whole tree. Given a
``TRACEPARENT`` (and ``TRACESTATE``) itself, e.g. from a CI job or a make target that is
traced, ``releasectl`` joins that trace in turn.
"""

from __future__ import annotations

import os
import subprocess
import sys

import click

import otel_cli_telemetry as telemetry

telemetry.init(app="releasectl", version="3.0.0")

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "publishtool.py")


@click.group()
def cli() -> None:
    """Cut releases (an example for otel_cli_telemetry)."""


@cli.command()
@click.option("--fail-child", is_flag=True, help="Make the child fail.")
def release(fail_child: bool) -> None:
    """Tag, then publish with the child CLI."""
    with telemetry.phase("tag"):
        pass
    with telemetry.phase("child"):
        args = [sys.executable, CHILD, "publish", *(["--fail"] if fail_child else [])]
        code = subprocess.run(args, env=telemetry.subprocess_env(), check=False).returncode
    if code:
        raise SystemExit(code)
    click.echo("released")


if __name__ == "__main__":
    cli()
