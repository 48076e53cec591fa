"""A CLI that tries hard to leak: ``leaky_app.py work [--token T] [--note N] [--phase P]
[--fail MSG] [ITEM ...]``, on click, typer or argparse (``LEAKY_FRAMEWORK``).

What it plants, for the privacy tests to look for downstream:

- option values and positional arguments (never captured by the SDK);
- environment variables (``LEAKY_ENV_SECRET``; never read by the SDK);
- ``--note`` as the value of declared fields of every kind (span, phase and metric-point
  attributes): text comes out scrubbed, the other kinds keep only values that fit them;
- ``--phase`` as a phase name (and ``--note`` inside one): a name outside the names grammar
  or that looks like a secret is refused by ``phase()`` (ValueError, caught here: the app
  then uses ``rejected``);
- ``--command`` as a generic ``command()`` name around the work (dynamic: redacted if bad);
- ``--token`` under undeclared keys (span, phase, metric point): must be dropped;
- ``--fail`` plus the token in an exception's message: only ``error.type`` may remain.
"""

from __future__ import annotations

import os
import sys

import otel_cli_telemetry as telemetry

FRAMEWORK = os.environ.get("LEAKY_FRAMEWORK", "click")

telemetry.init(
    app="leakyapp",
    version="1.0.0",
    fields={
        "leaky.note": telemetry.Text("free text from the user (scrubbed)"),
        "leaky.tags": telemetry.Text("free-text tags (scrubbed)", many=True),
        "leaky.count": telemetry.Integer("number of items"),
        "leaky.label": "a label (a bare description: an identifier)",
        "leaky.ident": telemetry.Identifier("an identifier"),
        "leaky.mode": telemetry.Enum("the mode", values=["fast", "slow"]),
        "leaky.version": telemetry.Version("a version"),
        "leaky.took": telemetry.Duration("a duration"),
        "leaky.ratio": telemetry.Number("a ratio"),
        "leaky.flag": telemetry.Bool("a flag"),
    },
)
ops = telemetry.counter("leaky.ops", unit="{op}", description="operations done")


def safe_phase(name: str, attributes: dict[str, object] | None = None) -> telemetry.phase:
    """``phase(name)``, or ``phase("rejected")`` when the SDK refuses the name."""
    try:
        return telemetry.phase(name, attributes=attributes)
    except ValueError as error:
        message = str(error)
    # A name refused as a secret is not repeated in the error (it may be shown).
    assert "looks like a secret" not in message or name not in message
    return telemetry.phase("rejected", attributes=attributes)


def work(token: str, note: str, phase_name: str, fail: str, items: list[str]) -> None:
    """Plant everything, then fail if asked."""
    env_secret = os.environ.get("LEAKY_ENV_SECRET", "")
    with safe_phase(phase_name, attributes={"leaky.note": note, "leaky.secret": token}):
        telemetry.set_attributes(
            {
                "leaky.note": note,
                "leaky.tags": [note, "plain"],
                "leaky.count": len(items),
                "leaky.label": note,
                "leaky.ident": note,
                "leaky.mode": note,
                "leaky.version": note,
                "leaky.took": note,
                "leaky.ratio": note,
                "leaky.flag": note,
                "leaky.token": token,
                "env.secret": env_secret,
            }
        )
        ops.add(1, {"leaky.note": note, "leaky.label": note, "leaky.token": token})
        with safe_phase(f"inner.{note}" if note else "inner"):
            pass
        if fail:
            raise RuntimeError(f"{fail} token={token} env={env_secret} items={items}")
    print(f"done {len(items)}")


def run_click() -> None:
    import click

    @click.group()
    def cli() -> None:
        """Root."""

    @cli.command("work")
    @click.option("--token", default="")
    @click.option("--note", default="")
    @click.option("--phase", "phase_name", default="work")
    @click.option("--fail", default="")
    @click.argument("items", nargs=-1)
    def work_command(
        token: str, note: str, phase_name: str, fail: str, items: tuple[str, ...]
    ) -> None:
        work(token, note, phase_name, fail, list(items))

    cli()


def run_typer() -> None:
    import typer

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def main() -> None:
        """Root."""

    @app.command("work")
    def work_command(
        items: list[str] = typer.Argument(None),  # noqa: B008
        token: str = typer.Option("", "--token"),
        note: str = typer.Option("", "--note"),
        phase_name: str = typer.Option("work", "--phase"),
        fail: str = typer.Option("", "--fail"),
    ) -> None:
        work(token, note, phase_name, fail, list(items or []))

    app()


def run_argparse() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="leakyapp")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("work")
    sub.add_argument("--token", default="")
    sub.add_argument("--note", default="")
    sub.add_argument("--phase", dest="phase_name", default="work")
    sub.add_argument("--fail", default="")
    sub.add_argument("items", nargs="*")
    args = parser.parse_args()
    work(args.token, args.note, args.phase_name, args.fail, args.items)


def run_generic() -> None:
    """``leaky_app.py NAME [options]``: the work inside ``telemetry.command(NAME)``."""
    import argparse

    parser = argparse.ArgumentParser(prog="leakyapp")
    parser.add_argument("name")
    parser.add_argument("--token", default="")
    parser.add_argument("--note", default="")
    parser.add_argument("--phase", dest="phase_name", default="work")
    parser.add_argument("--fail", default="")
    parser.add_argument("items", nargs="*")
    args = parser.parse_args()
    with telemetry.command(args.name):
        work(args.token, args.note, args.phase_name, args.fail, args.items)


if __name__ == "__main__":
    runners = {"click": run_click, "typer": run_typer, "argparse": run_argparse}
    runners["generic"] = run_generic
    runners[FRAMEWORK]()
    sys.exit(0)
