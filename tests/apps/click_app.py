"""A click test app.

``click_app.py [--verbose] deploy --do ok|exitN|ctxexitN|raise|interrupt|sigterm``
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _scenario import act, maybe_init

maybe_init("clickapp")

import click  # noqa: E402  (imported after init on purpose: lazy patching must work)


@click.group()
@click.option("--verbose", is_flag=True)
def cli(verbose: bool) -> None:
    """Root."""


@cli.command()
@click.option("--do", "behaviour", default="ok")
@click.option("--force", "-f", is_flag=True)
@click.option("--token", default=None)
@click.pass_context
def deploy(ctx: click.Context, behaviour: str, force: bool, token: str | None) -> None:
    """Deploy."""
    if behaviour.startswith("ctxexit"):
        click.echo("ctx exit")
        ctx.exit(int(behaviour[7:]))
    act(behaviour)


@cli.group()
def stage() -> None:
    """Stages."""


@stage.command("new")
@click.argument("name")
def stage_new(name: str) -> None:
    """New stage."""
    click.echo("created")


@cli.group(chain=True)
def pipeline() -> None:
    """Chained steps."""


@pipeline.command()
def build() -> None:
    click.echo("build")


@pipeline.command()
def upload() -> None:
    click.echo("upload")


if __name__ == "__main__":
    if os.environ.get("STANDALONE", "1") == "0":
        rv = cli.main(standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    cli()
