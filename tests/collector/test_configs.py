"""The shipped configs: every combination validates, and the allowlist matches the SDK schema."""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from otel_cli_telemetry.admin.schema_collector import render_collector_allowlist
from otel_cli_telemetry.schema import Bool, Enum, Integer, MetricSpec, Schema

pytestmark = pytest.mark.collector

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = ROOT / "collector"
BACKENDS = ("file", "jaeger", "prometheus", "vendor")
INGEST = ("tls", "auth")

#: The example app's declaration, as the issue states it (the source of truth is
#: examples/deploy/deployctl.py; the test below checks the two agree).
DEPLOYCTL_FIELDS = {
    "workspace.projects": Integer("number of projects in the workspace"),
    "workspace.stages": Integer("number of stages in the project"),
    "deploy.functions.added": Integer("functions added by the deploy"),
    "deploy.functions.updated": Integer("functions updated by the deploy"),
    "deploy.functions.removed": Integer("functions removed by the deploy"),
    "deploy.infrastructure_changed": Bool(
        "whether the deploy changed infrastructure, not only function code"
    ),
    "deploy.change": Enum(
        "kind of function change counted", values=["added", "updated", "removed"]
    ),
}
DEPLOYCTL_METRIC_SHAPES = {
    ("deploy.bytes_uploaded", "counter", "By"),
    ("deploy.functions.changed", "counter", "{function}"),
    ("deploy.build.duration", "histogram", "s"),
}


def _example_declarations() -> tuple[dict[str, object], tuple[MetricSpec, ...]]:
    """FIELDS and METRICS of the example, read the way generate-allowlist.py reads them."""
    spec = importlib.util.spec_from_file_location(
        "generate_allowlist", COLLECTOR / "generate-allowlist.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fields, metrics = module.declarations(ROOT / "examples" / "deploy" / "deployctl.py")
    return fields, metrics


def test_generator_reads_typed_field_declarations(tmp_path: Path) -> None:
    """FIELDS written with the SDK's kind constructors are read without running the app."""
    spec = importlib.util.spec_from_file_location(
        "generate_allowlist", COLLECTOR / "generate-allowlist.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = tmp_path / "app.py"
    source.write_text(
        "import otel_cli_telemetry as telemetry\n"
        "from otel_cli_telemetry.schema import Integer\n"
        "FIELDS = {\n"
        "    'a.count': Integer('a count'),\n"
        "    'a.mode': telemetry.Enum('a mode', values=['x', 'y'], many=True),\n"
        "    'a.note': 'a description',\n"
        "}\n"
        "raise SystemExit('the app must not run')\n",
        encoding="utf-8",
    )
    fields, metrics = module.declarations(source)
    assert fields == {
        "a.count": Integer("a count"),
        "a.mode": Enum("a mode", values=["x", "y"], many=True),
        "a.note": "a description",
    }
    assert metrics == ()


def test_example_declares_what_the_issue_says() -> None:
    fields, metrics = _example_declarations()
    # the keys (declarations may be descriptions or typed kinds, read as dicts)
    assert set(fields) == set(DEPLOYCTL_FIELDS)
    assert {(m.name, m.kind, m.unit) for m in metrics} == DEPLOYCTL_METRIC_SHAPES


def test_shipped_allowlist_is_generated_from_the_schema() -> None:
    fields, metrics = _example_declarations()
    expected = render_collector_allowlist(Schema("deployctl", fields, metrics))
    shipped = (COLLECTOR / "allowlist.yaml").read_text(encoding="utf-8")
    assert shipped == expected, (
        "collector/allowlist.yaml is stale: run python collector/generate-allowlist.py"
    )


def test_allowlist_is_yaml_configuring_the_normalizer() -> None:
    yaml = pytest.importorskip("yaml")
    fields, metrics = _example_declarations()
    schema = Schema("deployctl", fields, metrics)
    doc = yaml.safe_load(render_collector_allowlist(schema))
    assert set(doc["processors"]) == {"normalizer"}
    normalizer = doc["processors"]["normalizer"]
    assert normalizer["app"] == "deployctl"
    assert set(normalizer["span_attributes"]) == set(schema.span_attributes)
    assert set(normalizer["resource_attributes"]) == set(schema.resource_attributes)
    assert set(normalizer["metric_attributes"]) == set(schema.metric_attributes)
    assert "host.name" not in normalizer["span_attributes"]
    assert set(normalizer["metrics"]) == set(schema.metric_names)
    declared = {m.name: m for m in metrics}
    for name, spec in normalizer["metrics"].items():
        assert spec["type"] in ("counter", "histogram")
        if name in declared:
            assert (spec["type"], spec["unit"], spec["description"]) == (
                declared[name].kind,
                declared[name].unit,
                declared[name].description,
            )
    for field in [
        *normalizer["span_attributes"].values(),
        *normalizer["resource_attributes"].values(),
    ]:
        assert field["kind"] in (
            "enum", "identifier", "integer", "number", "bool", "version", "duration", "text"
        )  # fmt: skip
        assert field["type"].removesuffix("[]") in ("string", "int", "double", "bool", "any")


def test_allowlist_escapes_dollar_for_the_config_resolver() -> None:
    yaml = pytest.importorskip("yaml")
    schema = Schema("x", {}, (MetricSpec("cost", "counter", "{USD}", "cost in $ (${env:HOME})"),))
    doc = yaml.safe_load(render_collector_allowlist(schema))
    assert doc["processors"]["normalizer"]["metrics"]["cost"]["description"] == (
        "cost in $$ ($${env:HOME})"
    )


def test_allowlist_needs_no_pyyaml() -> None:
    code = (
        "import sys; sys.modules['yaml'] = None\n"
        "from otel_cli_telemetry.schema import Schema\n"
        "from otel_cli_telemetry.admin.schema_collector import render_collector_allowlist\n"
        "print(len(render_collector_allowlist(Schema('x'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 500


def _combinations() -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for n in range(1, len(BACKENDS) + 1):
        combos += list(itertools.combinations(BACKENDS, n))
    # ingest overlays with one backend and with all of them
    for ingest in [("tls",), ("auth",), ("tls", "auth")]:
        combos += [(*ingest, "prometheus"), (*ingest, *BACKENDS)]
    return combos


@pytest.mark.parametrize("overlays", _combinations(), ids=lambda c: "+".join(c) or "base")
def test_every_shipped_combination_validates(
    collector_binary: Path, overlays: tuple[str, ...], tmp_path: Path
) -> None:
    configs = [COLLECTOR / "config.yaml", COLLECTOR / "allowlist.yaml"]
    configs += [COLLECTOR / "overlays" / f"{name}.yaml" for name in overlays]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
    env.update(
        {
            "OTELCOL_VENDOR_ENDPOINT": "https://otlp.vendor.invalid",
            "OTELCOL_VENDOR_HEADERS": '{"api-key": "placeholder"}',
            "OTELCOL_INGEST_TOKEN": "placeholder-token",
            "OTELCOL_FILE_PATH": str(tmp_path / "audit.jsonl"),
        }
    )
    cmd = [str(collector_binary), "validate"]
    for config in configs:
        cmd += ["--config", str(config)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-4000:]


def test_every_overlay_is_covered() -> None:
    shipped = {p.stem for p in (COLLECTOR / "overlays").glob("*.yaml")}
    assert shipped == set(BACKENDS) | set(INGEST)


def test_config_without_allowlist_is_refused(collector_binary: Path) -> None:
    """Fail closed: the base config alone does not start."""
    result = subprocess.run(
        [str(collector_binary), "validate", "--config", str(COLLECTOR / "config.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert 'processor "normalizer" which is not configured' in result.stderr


def test_empty_normalizer_config_is_refused(collector_binary: Path, tmp_path: Path) -> None:
    """Fail closed: a normalizer without an allowlist (no app, no metrics) does not start."""
    empty = tmp_path / "empty-allowlist.yaml"
    empty.write_text("processors:\n  normalizer: {}\n", encoding="utf-8")
    result = subprocess.run(
        [
            str(collector_binary),
            "validate",
            "--config",
            str(COLLECTOR / "config.yaml"),
            "--config",
            str(empty),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "app: required" in result.stderr
    assert "at least one metric" in result.stderr


def test_auth_overlay_without_token_is_refused(collector_binary: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
    cmd = [str(collector_binary), "validate"]
    for config in ("config.yaml", "allowlist.yaml", "overlays/auth.yaml"):
        cmd += ["--config", str(COLLECTOR / config)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode != 0
    assert "no bearer token" in result.stderr


def test_manifest_lists_exactly_the_components_the_configs_use() -> None:
    """Every component type named in a config is built in, and nothing else is."""
    manifest = (COLLECTOR / "builder-config.yaml").read_text()
    modules = [
        line.split()[2] for line in manifest.splitlines() if line.strip().startswith("- gomod:")
    ]
    built = {m.rsplit("/", 1)[-1] for m in modules}
    expected = {
        "otlpreceiver",
        "memorylimiterprocessor",
        "batchprocessor",
        "transformprocessor",
        "normalizer",
        "deltatocumulativeprocessor",
        "forwardconnector",
        "spanmetricsconnector",
        "otlphttpexporter",
        "nopexporter",
        "fileexporter",
        "prometheusexporter",
        "healthcheckextension",
        "bearertokenauthextension",
        "ingestguard",
        "envprovider",
        "fileprovider",
        "yamlprovider",
    }
    assert built == expected
    versions = {
        line.split()[3]
        for line in manifest.splitlines()
        if line.strip().startswith("- gomod:")
        and "provider" not in line
        and "/otelcol-cli-telemetry/" not in line  # this repository's own modules
    }
    assert len(versions) == 1, f"core and contrib versions differ: {versions}"
    text = "\n".join(
        p.read_text() for p in [COLLECTOR / "config.yaml", *(COLLECTOR / "overlays").glob("*.yaml")]
    )
    for type_name in (
        "otlp:",
        "memory_limiter:",
        "batch:",
        "transform/",
        "normalizer,",
        "deltatocumulative:",
        "forward/",
        "span_metrics:",
        "otlp_http/",
        "nop:",
        "file/",
        "prometheus:",
        "health_check:",
        "bearertokenauth/",
        "ingestguard:",
    ):
        assert type_name in text, type_name


def _shipped_config_names() -> set[str]:
    return {"config.yaml", "allowlist.yaml"} | {
        p.name for p in (COLLECTOR / "overlays").glob("*.yaml")
    }


def test_kubernetes_manifests_reference_shipped_configs() -> None:
    yaml = pytest.importorskip("yaml")
    docs = []
    for path in sorted((COLLECTOR / "deploy" / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    kinds = {d["kind"] for d in docs}
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Kustomization",
    } <= kinds
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    configs = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--config=")]
    assert {Path(c).name for c in configs} <= _shipped_config_names()
    assert Path(configs[0]).name == "config.yaml"
    assert Path(configs[1]).name == "allowlist.yaml"
    env = {e["name"] for e in container["env"]}
    assert {"OTELCOL_INGEST_TOKEN", "OTELCOL_TLS_CERT_FILE", "GOMEMLIMIT"} <= env
    service = next(
        d for d in docs if d["kind"] == "Service" and d["spec"]["type"] == "LoadBalancer"
    )
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_systemd_unit_and_containerfile_reference_shipped_files() -> None:
    unit = (COLLECTOR / "deploy" / "otelcol-cli-telemetry.service").read_text()
    configs = [
        w.split("=", 1)[1] for w in unit.replace("\\\n", " ").split() if w.startswith("--config=")
    ]
    assert configs
    assert {Path(c).name for c in configs} <= _shipped_config_names()
    assert "EnvironmentFile=" in unit
    assert "GOMEMLIMIT" in unit
    containerfile = (COLLECTOR / "deploy" / "Containerfile").read_text()
    for line in containerfile.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src
    manifest_version = (
        (COLLECTOR / "builder-config.yaml").read_text().split("otlpreceiver ")[1].split()[0]
    )
    assert f"OCB_VERSION={manifest_version}" in containerfile


def test_every_local_module_path_is_substituted_where_the_distribution_is_built() -> None:
    """Each local module of the manifest (path placeholder) is substituted, and its sources
    copied, by build.sh and by the Containerfile: a module added to one and not the other
    would build here and fail in the image."""
    manifest = (COLLECTOR / "builder-config.yaml").read_text()
    placeholders = set(re.findall(r"__[A-Z]+_PATH__", manifest))
    assert {"__NORMALIZER_PATH__", "__INGESTGUARD_PATH__"} <= placeholders
    build = (COLLECTOR / "build.sh").read_text()
    containerfile = (COLLECTOR / "deploy" / "Containerfile").read_text()
    for placeholder in placeholders:
        module = placeholder.strip("_").removesuffix("_PATH").lower()
        assert placeholder in build, placeholder
        assert f'"$here/{module}"' in build, f"build.sh does not hash {module}'s sources"
        assert placeholder in containerfile, placeholder
        assert f"COPY collector/{module}/" in containerfile, module
