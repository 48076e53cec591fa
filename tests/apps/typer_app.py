"""A typer test app with the same scenarios as click_app.py."""

from __future__ import annotations

import os
import sys
from typing import Optional

sys.path.insert(0, os.path.dirname(__file__))
from _scenario import act, maybe_init

maybe_init("typerapp")

import typer  # noqa: E402

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
stage_app = typer.Typer()
app.add_typer(stage_app, name="stage")


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose")) -> None:
    """Root."""


@app.command()
def deploy(
    do: str = typer.Option("ok", "--do"),
    force: bool = typer.Option(False, "--force", "-f"),
    token: Optional[str] = typer.Option(None, "--token"),  # noqa: UP045
) -> None:
    """Deploy."""
    if do.startswith("ctxexit"):
        typer.echo("ctx exit")
        raise typer.Exit(int(do[7:]))
    act(do)


@stage_app.command("new")
def stage_new(name: str) -> None:
    """New stage."""
    typer.echo("created")


if __name__ == "__main__":
    app()
