"""deployctl: an example click CLI modelled on Mantil's deploy, instrumented with one call.

Mantil's published policy (seed 000): every command sends a per-command event with
workspace, stage and project counts; ``deploy`` also sends functions added, updated and
removed, the durations of its build, upload and update phases, the bytes uploaded and whether
infrastructure changed. ``MANTIL_NO_EVENTS`` (here ``DEPLOYCTL_NO_EVENTS``) turns it off, and
credentials typed on the command line never leave the machine.

Run it: ``.venv/bin/python examples/deploy/deployctl.py deploy --stage dev``; see what it recorded:
``otel-cli-telemetry --app deployctl report``.
"""

from __future__ import annotations

import hashlib
import time

import click

import otel_cli_telemetry as telemetry
from otel_cli_telemetry.schema import MetricSpec

FIELDS = {
    "workspace.projects": "number of projects in the workspace",
    "workspace.stages": "number of stages in the project",
    "deploy.functions.added": "functions added by the deploy",
    "deploy.functions.updated": "functions updated by the deploy",
    "deploy.functions.removed": "functions removed by the deploy",
    "deploy.infrastructure_changed": (
        "whether the deploy changed infrastructure, not only function code"
    ),
    "deploy.change": "kind of function change counted: added, updated or removed",
}
METRICS = (
    MetricSpec("deploy.bytes_uploaded", "counter", "By", "bytes uploaded to the bucket"),
    MetricSpec("deploy.functions.changed", "counter", "{function}", "functions changed, by kind"),
    MetricSpec("deploy.build.duration", "histogram", "s", "duration of the build phase"),
)

telemetry.init(
    app="deployctl",
    version="1.4.2",
    fields=FIELDS,
    opt_out_env=("DEPLOYCTL_NO_EVENTS",),
    policy_url="https://example.com/deployctl/telemetry",
)

bytes_uploaded = telemetry.counter(
    "deploy.bytes_uploaded", unit="By", description="bytes uploaded to the bucket"
)
functions_changed = telemetry.counter(
    "deploy.functions.changed", unit="{function}", description="functions changed, by kind"
)
build_duration = telemetry.histogram(
    "deploy.build.duration", unit="s", description="duration of the build phase"
)


class QuotaExceededError(Exception):
    """The (simulated) cloud account is out of quota."""


def _plan(stage: str) -> tuple[int, int, int]:
    """A deterministic fake diff of functions for a stage: (added, updated, removed)."""
    digest = hashlib.sha256(stage.encode()).digest()
    return digest[0] % 4, 1 + digest[1] % 5, digest[2] % 2


@click.group()
@click.option("--verbose", "-v", is_flag=True, help="Say more.")
def cli(verbose: bool) -> None:
    """Deploy serverless functions (an example for otel_cli_telemetry)."""
    telemetry.set_attributes({"workspace.projects": 2, "workspace.stages": 3})


@cli.command()
@click.option("--stage", default="dev", help="Stage to deploy to.")
@click.option("--aws-access-key-id", default=None, help="Credentials (never recorded).")
@click.option("--aws-secret-access-key", default=None, help="Credentials (never recorded).")
@click.option("--fail", type=click.Choice(["quota", "usage"]), default=None, hidden=True)
@click.option("--slow", type=float, default=0.0, hidden=True, help="Seconds to sleep.")
def deploy(
    stage: str,
    aws_access_key_id: str | None,
    aws_secret_access_key: str | None,
    fail: str | None,
    slow: float,
) -> None:
    """Build, upload and update the functions of a stage."""
    added, updated, removed = _plan(stage)
    with telemetry.phase("build"):
        started = time.perf_counter()
        time.sleep(0.01 + slow)
        build_duration.record(time.perf_counter() - started)
    with telemetry.phase("upload"):
        size = 1024 * (added + updated) * 37
        bytes_uploaded.add(size)
        if fail == "quota":
            raise QuotaExceededError(f"quota exceeded for account of {aws_access_key_id}")
    if fail == "usage":
        raise click.UsageError("--stage must name an existing stage")
    with telemetry.phase("update"):
        for kind, count in (("added", added), ("updated", updated), ("removed", removed)):
            if count:
                functions_changed.add(count, {"deploy.change": kind})
    telemetry.set_attributes(
        {
            "deploy.functions.added": added,
            "deploy.functions.updated": updated,
            "deploy.functions.removed": removed,
            "deploy.infrastructure_changed": added > 0 or removed > 0,
        }
    )
    click.echo(
        f"Deployed stage {stage}: +{added} ~{updated} -{removed} functions, {size} bytes uploaded."
    )


@cli.group()
def stage() -> None:
    """Manage stages."""


@stage.command("new")
@click.argument("name")
def stage_new(name: str) -> None:
    """Create a stage."""
    click.echo(f"Created stage {name}.")


@stage.command("list")
def stage_list() -> None:
    """List stages."""
    click.echo("dev\nstaging\nprod")


@cli.command()
@click.argument("code", type=int)
def exit(code: int) -> None:
    """Exit with CODE (to see exit codes in the telemetry)."""
    raise SystemExit(code)


if __name__ == "__main__":
    cli()
