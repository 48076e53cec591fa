"""A click app for the consent and state-file tests.

``consent_app.py [--telemetry|--no-telemetry] run [--count N]``.

Set by the environment: ``CONSENT`` (notice|ask), ``ASK_SHARE`` (0..1), ``EXTRA_FIELD=1``
(declares one more field: a schema change), ``OPT_OUT_ENV`` (an extra opt-out variable),
``BARRIER`` (an epoch time the command waits for, so parallel runs end together).
``--telemetry``/``--no-telemetry`` turn telemetry on/off for the run, as cecli's
``--analytics``/``--no-analytics`` do (read before click parses: ``init()`` comes first).
"""

from __future__ import annotations

import os
import sys
import time

import otel_cli_telemetry as telemetry

FIELDS = {"consent.items": "items handled by the run"}
if os.environ.get("EXTRA_FIELD") == "1":
    FIELDS["consent.extra"] = "a field added in a later version"

ENABLED = True if "--telemetry" in sys.argv else False if "--no-telemetry" in sys.argv else None

telemetry.init(
    app="consentapp",
    version="2.0.0",
    consent=os.environ.get("CONSENT", "notice"),
    ask_share=float(os.environ.get("ASK_SHARE", "1")),
    fields=FIELDS,
    enabled=ENABLED,
    opt_out_env=tuple(filter(None, [os.environ.get("OPT_OUT_ENV")])),
)

import click  # noqa: E402


@click.group()
@click.option("--telemetry/--no-telemetry", "per_run", default=None)
def cli(per_run: bool | None) -> None:
    """Root."""


@cli.command()
@click.option("--count", default=1)
def run(count: int) -> None:
    """Do some work."""
    barrier = os.environ.get("BARRIER")
    if barrier:
        time.sleep(max(0.0, float(barrier) - time.time()))
    with telemetry.phase("work"):
        telemetry.set_attributes({"consent.items": count})
    click.echo(f"ran {count}")


if __name__ == "__main__":
    cli()
