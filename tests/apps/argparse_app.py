"""An argparse test app with the same scenarios as click_app.py."""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _scenario import act, maybe_init

maybe_init("argparseapp")


def main() -> int:
    parser = argparse.ArgumentParser(prog="argparseapp")
    parser.add_argument("--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    deploy = commands.add_parser("deploy", aliases=["d"])
    deploy.add_argument("--do", default="ok")
    deploy.add_argument("--force", "-f", action="store_true")
    deploy.add_argument("--token", default=None)
    stage = commands.add_parser("stage")
    stage_commands = stage.add_subparsers(dest="stage_command", required=True)
    new = stage_commands.add_parser("new")
    new.add_argument("name")
    args, _unknown = (
        parser.parse_known_args() if os.environ.get("KNOWN") else (parser.parse_args(), [])
    )
    if args.command in ("deploy", "d"):
        act(args.do)
    else:
        print("created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
