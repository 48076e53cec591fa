"""your-cli: a click CLI that keeps the "CLI Telemetry Policy" of seed 003, field by field.

The policy's data points, and the OpenTelemetry field that carries each:

=================  ===========================================================================
event_version      resource ``cli_telemetry.schema.version``
installation_id    resource ``service.instance.id`` (a uuid4, made on first run, kept in
                   ``~/.your-platform/installation_id``)
cli_version        resource ``service.version``
command            span ``cli_telemetry.command`` (and the span name ``your-cli <command>``)
os_arch            resource ``os.type`` + ``host.arch`` (``linux`` + ``amd64``)
duration_ms        the span's own start and end (and the ``cli_telemetry.command.duration`` metric)
status             span status (ERROR when the exit code is not 0) and ``process.exit.code``
error_code         span ``error.type``: a code name (the exception class, ``usage_error``...),
                   never a message or stack trace
is_interactive     span ``process.interactive``
=================  ===========================================================================

No custom field is declared: the app adds nothing to that list. The SDK's envelope (see
README.md) is listed in the policy as well.

Control: a first-run notice that needs no input; ``your-cli telemetry enable|disable``
(injected by the SDK); ``YOUR_PLATFORM_TELEMETRY_OPT_OUT=1`` for a single run.
"""

from __future__ import annotations

import os

import click

import otel_cli_telemetry as telemetry

NOTICE = """\
your-cli collects anonymous usage telemetry to improve the CLI: the command, its duration,
whether it succeeded (with a high-level error code), the CLI version, OS and architecture,
whether it ran in a terminal, and a random installation id. Never arguments, flag values,
environment variables, file contents, or anything personal. Nothing was sent for this run.
Disable it: `your-cli telemetry disable`, or YOUR_PLATFORM_TELEMETRY_OPT_OUT=1 for one run.
"""

telemetry.init(
    app="your-cli",
    version="0.2.1",
    notice=NOTICE,
    opt_out_env=("YOUR_PLATFORM_TELEMETRY_OPT_OUT",),
    state_dir=os.path.join(os.path.expanduser("~"), ".your-platform"),
    policy_url="https://your-platform.example/cli-telemetry-policy",
)


class InvalidManifestError(click.ClickException):
    """The manifest could not be read (error code ``InvalidManifestError``, exit 3)."""

    exit_code = 3


@click.group()
def cli() -> None:
    """Build and deploy to Your Platform (an example for otel_cli_telemetry)."""


@cli.command()
@click.option("--manifest", default="your.toml", help="The manifest to build.")
@click.option("--release", is_flag=True, help="Optimised build.")
def build(manifest: str, release: bool) -> None:
    """Build the project described by MANIFEST."""
    try:
        with open(manifest, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InvalidManifestError(f"cannot read {manifest}: {exc}") from None
    if "name" not in text:
        first = text.splitlines()[0] if text else ""
        raise InvalidManifestError(f"{manifest}: no name in {first!r}")
    click.echo(f"built {'release' if release else 'debug'}")


@cli.command()
@click.argument("project")
@click.option("--env", "environment", default="dev", help="Target environment.")
@click.option("--token", default=None, help="API token.")
@click.option("--owner", default=None, help="Owner's e-mail.")
def deploy(project: str, environment: str, token: str | None, owner: str | None) -> None:
    """Deploy PROJECT."""
    click.echo(f"deployed {project} to {environment}")


if __name__ == "__main__":
    cli()
