"""An argparse app with the ``telemetry`` command added by ``add_telemetry_command``."""

from __future__ import annotations

import argparse
import sys

import otel_cli_telemetry as telemetry

telemetry.init(app="helperapp", version="1.0.0", fields={"helper.items": "items handled"})


def main() -> int:
    parser = argparse.ArgumentParser(prog="helperapp")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    run.add_argument("--count", type=int, default=1)
    telemetry.add_telemetry_command(commands)
    args = parser.parse_args()
    code = telemetry.handle_telemetry_command(args)
    if code is not None:
        return code
    telemetry.set_attributes({"helper.items": args.count})
    print(f"ran {args.count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
