"""sst: a typer CLI reproducing SST's "Anonymous Telemetry" policy (seed 004) with this SDK.

SST tracks, anonymously: the command invoked (``sst build``, ``sst start``, ``sst deploy``),
the version of SST, and general machine information: the number of CPUs, the OS, and whether
the command ran in CI. Here:

- command: span ``cli_telemetry.command`` (span name ``sst start``: SST's ``CLI_COMMAND`` event);
- version: resource ``service.version``;
- CPUs: the declared field ``sst.machine.cpus`` (``os.cpu_count()``, no process started);
- OS: resource ``os.type``; CI: span ``cli_telemetry.ci.detected`` and
  ``cli_telemetry.ci.provider``.

Control: ``sst telemetry`` / ``sst telemetry status``, ``sst telemetry disable``,
``sst telemetry enable`` (the subcommand the SDK adds to typer apps), and
``SST_TELEMETRY_DISABLED=1``. Never: environment variables, file paths, file contents, logs,
or serialized errors.
"""

from __future__ import annotations

import os
import time

import typer

import otel_cli_telemetry as telemetry

telemetry.init(
    app="sst",
    version="2.43.6",
    fields={"sst.machine.cpus": telemetry.Integer("number of logical CPUs of the machine")},
    opt_out_env=("SST_TELEMETRY_DISABLED",),
    policy_url="https://docs.sst.dev/anonymous-telemetry",
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)


@app.callback()
def main() -> None:
    """Build full-stack serverless apps (an example for otel_cli_telemetry)."""
    telemetry.set_attributes({"sst.machine.cpus": os.cpu_count() or 0})


@app.command()
def build(config: str = typer.Option("sst.config.ts", "--config", help="Config file.")) -> None:
    """Build the app."""
    if not os.path.exists(config):
        raise FileNotFoundError(f"no config at {os.path.abspath(config)}")
    with open(config, encoding="utf-8") as handle:
        handle.read()
    typer.echo("Built")


@app.command()
def start(
    stage: str = typer.Option("dev", "--stage", help="Stage to start."),
    increase_timeout: bool = typer.Option(False, "--increase-timeout"),
) -> None:
    """Start the live development environment."""
    time.sleep(0.005)
    typer.echo(f"Started {stage}")


@app.command()
def deploy(stage: str = typer.Option("dev", "--stage", help="Stage to deploy.")) -> None:
    """Deploy the app."""
    with telemetry.phase("deploy.stacks"):
        time.sleep(0.005)
    typer.echo(f"Deployed {stage}")


if __name__ == "__main__":
    app()
