#!/usr/bin/env python3
"""Write collector/allowlist.yaml from an app's schema declaration.

    python collector/generate-allowlist.py                 # the example app (deployctl)
    python collector/generate-allowlist.py --check         # exit 1 if the shipped file is stale
    python collector/generate-allowlist.py --app mycli --source src/mycli/telemetry.py -o -

The app's module is not imported (importing a CLI runs its ``telemetry.init``): its
module-level ``FIELDS`` dict (descriptions, or ``telemetry.Enum(...)``-style kind calls with
literal arguments) and ``METRICS`` tuple of ``MetricSpec(...)`` calls are read with ``ast``.
The YAML comes from ``otel_cli_telemetry.admin.schema_collector.render_collector_allowlist``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from otel_cli_telemetry import schema  # noqa: E402  (the kind constructors)
from otel_cli_telemetry.admin.schema_collector import render_collector_allowlist  # noqa: E402
from otel_cli_telemetry.schema import MetricSpec, Schema  # noqa: E402

DEFAULT_SOURCE = ROOT / "examples" / "deploy" / "deployctl.py"
DEFAULT_OUTPUT = HERE / "allowlist.yaml"


def _field(node: ast.expr) -> object:
    """A field declaration: a literal (description or dict) or ``telemetry.Kind(...)``."""
    if isinstance(node, ast.Call):
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        constructor = getattr(schema, str(name), None)
        if constructor is None or str(name) not in schema.KIND_CONSTRUCTORS:
            raise ValueError(f"unsupported field declaration {ast.unparse(node)}")
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        return constructor(*args, **kwargs)
    return ast.literal_eval(node)


def declarations(source: Path) -> tuple[dict[str, object], tuple[MetricSpec, ...]]:
    """(FIELDS, METRICS) as declared at module level in ``source``, without running it."""
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    fields: dict[str, object] = {}
    metrics: list[MetricSpec] = []
    for node in tree.body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = {t.id for t in targets if isinstance(t, ast.Name)}
        if "FIELDS" in names and isinstance(node.value, ast.Dict):
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                fields[ast.literal_eval(key)] = _field(value)  # type: ignore[arg-type]
        if "METRICS" in names and isinstance(node.value, (ast.Tuple, ast.List)):
            for call in node.value.elts:
                if not isinstance(call, ast.Call):
                    raise ValueError(f"{source}: METRICS must hold MetricSpec(...) calls")
                args = [ast.literal_eval(a) for a in call.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
                metrics.append(MetricSpec(*args, **kwargs))
    return fields, tuple(metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="deployctl")
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help="python file with module-level FIELDS and METRICS",
    )
    parser.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), help="'-' for stdout")
    parser.add_argument(
        "--check", action="store_true", help="compare with --output instead of writing it"
    )
    args = parser.parse_args(argv)
    fields, metrics = declarations(args.source)
    text = render_collector_allowlist(Schema(args.app, fields, metrics))
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if args.check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
