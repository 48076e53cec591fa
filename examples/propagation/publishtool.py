"""publishtool: an argparse CLI that joins its caller's trace when given ``TRACEPARENT``.

Nothing trace-specific is written here: ``init()`` reads ``TRACEPARENT`` from the environment,
so the command's span becomes a child of the caller's span (see releasectl.py).
"""

from __future__ import annotations

import argparse
import sys

import otel_cli_telemetry as telemetry

telemetry.init(app="publishtool", version="1.2.0")


def main() -> int:
    """``publishtool publish [--fail]``."""
    parser = argparse.ArgumentParser(prog="publishtool")
    commands = parser.add_subparsers(dest="command", required=True)
    publish = commands.add_parser("publish", help="Upload the package.")
    publish.add_argument("--fail", action="store_true", help="Exit 4.")
    args = parser.parse_args()
    with telemetry.phase("upload"):
        pass
    if args.fail:
        return 4
    print("published")
    return 0


if __name__ == "__main__":
    sys.exit(main())
