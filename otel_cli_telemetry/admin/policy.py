"""The app's telemetry policy as Markdown, generated from its schema so it cannot drift.

``app telemetry schema --format policy`` prints it. A CLI author pastes it into their docs
(and a test can compare the docs with the output, as ``docs/PRIVACY.md`` does here): what is
collected, field by field with its description; what is never collected; when anything is
collected (notice or prompt); how to opt out with the app's real variable names and
commands; how to see what is collected; where the data goes.

Nothing here depends on the machine or the environment (only on ``init()``'s arguments and
the schema), so the output is the same wherever it is generated.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import DEFAULT_CI_BUDGET_S, Settings, env_prefix
from ..schema import (
    BUILTIN_RESOURCE_ATTRIBUTES,
    BUILTIN_SPAN_ATTRIBUTES,
    Field,
    Schema,
    builtin_fields,
)

NEVER_COLLECTED = (
    "Values of options and positional arguments: only the *names* of the options used "
    "(such as `--force`) are recorded.",
    "Environment variables, file contents, file paths, the current directory.",
    "Host name, IP or MAC address, user name, home directory.",
    "Exception messages and tracebacks: a failure is recorded as its type only "
    "(such as `ValueError`).",
    "Any field not listed above: undeclared fields are dropped before anything is stored.",
)

#: What each kind of field can hold, as the policy states it.
KIND_GUARANTEES = (
    ("enum", "one of the listed values, else `<other>`"),
    ("identifier", "a short token (letters, digits, `_ . + / -`, at most 64 characters) that "
     "no secret or personal-data rule matches and that does not look random, else `<redacted>`"),
    ("integer, number, bool", "a number or true/false, else nothing"),
    ("version", "a version number (such as `1.4.2`), else `<invalid-version>`"),
    ("duration", "a duration (such as `1.5s`), else `<invalid-duration>`"),
    ("text", "free text, scrubbed of secrets and personal data by pattern (vendor token "
     "formats, private keys, passwords, credentials in URLs, emails, IP and MAC addresses, "
     "home directories, internal host names, card, phone, SSN and IBAN numbers, random-looking "
     "tokens, this machine's user and host names); best effort, so fields of this kind are "
     "kept to a minimum"),
)  # fmt: skip


def kind_label(field: Field) -> str:
    """``enum: eu, us``, ``integer``, ``text (scrubbed)``, ``identifier list``..."""
    label = field.kind
    if field.values:
        label += ": " + ", ".join(f"`{v}`" for v in field.values)
    if field.many:
        label += " (list)"
    if field.implicit:
        label += " (or a number)"
    return label


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _when(settings: Settings) -> list[str]:
    app = settings.app
    options = settings.options
    if options.consent == "notice":
        return [
            f"- The first time {app} runs, it prints a notice on stderr and sends nothing for "
            "that run. Commands are recorded from the next run on.",
            "- The notice is shown again, and again nothing is sent for that run, whenever the "
            "list of fields below changes.",
            "- In CI no notice is shown (nobody would read it); telemetry is on unless one of "
            "the opt-outs below is set.",
        ]
    lines = [
        f"- Nothing is collected until you answer yes when {app} asks. It asks only on an "
        "interactive terminal, never in CI or in scripts, where the answer is taken as no "
        "(and not remembered).",
        "- Your answer is remembered. If the list of fields below changes, you are asked "
        "again; a no stays a no.",
    ]
    if options.ask_share < 1.0:
        share = f"{options.ask_share * 100:.4g}%"
        lines.append(
            f"- Only about {share} of installations are asked, chosen by their random "
            "installation id; the others collect nothing."
        )
    return lines


def _opt_out(settings: Settings) -> list[str]:
    app = settings.app
    prefix = env_prefix(app)
    lines = [
        f"- For good: `{app} telemetry disable` (or `otel-cli-telemetry --app {app} disable`); "
        f"it also deletes records not sent yet. `{app} telemetry enable` turns it back on.",
        f"- For one run or one shell: `{prefix}_TELEMETRY=0`. (`{prefix}_TELEMETRY=1` turns it "
        "on for a run, over the settings below.)",
    ]
    lines += [f"- `{name}=1`." for name in settings.options.opt_out_env]
    lines += [
        "- `DO_NOT_TRACK=1` (or `true`), the cross-tool convention.",
        "- `OTEL_SDK_DISABLED=true`, the OpenTelemetry switch.",
        f"- `{app} telemetry status` says whether telemetry is on and which of these settings "
        "decided.",
    ]
    return lines


def _inspect(settings: Settings) -> list[str]:
    app = settings.app
    prefix = env_prefix(app)
    return [
        f"- `{app} telemetry schema` lists every field (`--format json` as data, "
        "`--format collector` as the matching collector allowlist).",
        f"- `{prefix}_TELEMETRY_DEBUG=1` prints each record on stderr and sends nothing.",
        f"- `{prefix}_TELEMETRY_LOG=records.jsonl` appends each record to that file, sent or "
        "not (also while telemetry is off).",
        "- Records that may be sent are also kept in a local history (`records.jsonl` in the "
        f"app's state directory); `otel-cli-telemetry --app {app} report` summarises it.",
    ]


def _where(settings: Settings) -> list[str]:
    endpoint = settings.options.endpoint
    budget = settings.options.ci_budget_s
    budget_s = DEFAULT_CI_BUDGET_S if budget is None else budget
    if endpoint:
        first = (
            f"Records are sent with OpenTelemetry's protocol (OTLP) to `{endpoint}`, a "
            "collector run by the app's maintainers, which repeats the scrubbing and the "
            "field allowlist before storing anything."
        )
    else:
        first = (
            "This build names no endpoint: records stay on your machine, in the local "
            "history, unless the standard `OTEL_EXPORTER_OTLP_ENDPOINT` variable names an "
            "OpenTelemetry collector, which then receives them."
        )
    return [
        first,
        "",
        "Sending never slows a command down: records are written to a local spool and sent "
        "by a short-lived background process. In CI, where no later run would send them, "
        f"they are sent before the command exits, within at most {budget_s:g} s.",
    ]


def render_policy(settings: Settings, schema: Schema) -> str:
    """The Markdown policy for ``settings.app`` with ``schema`` (fields and metrics)."""
    app = settings.app
    declared = dict(schema.fields)
    span_rows = [
        (f"`{k}`", kind_label(builtin_fields()[k]), v, "built-in")
        for k, v in sorted(BUILTIN_SPAN_ATTRIBUTES.items())
    ]
    span_rows += [
        (f"`{k}`", kind_label(f), f.description, app) for k, f in sorted(declared.items())
    ]
    resource_rows = [
        (f"`{k}`", kind_label(builtin_fields()[k]), v)
        for k, v in sorted(BUILTIN_RESOURCE_ATTRIBUTES.items())
    ]
    metrics = schema.as_dict()["metrics"]
    assert isinstance(metrics, dict)
    metric_rows = [
        (f"`{name}`", meta["kind"], f"`{meta['unit'] or '1'}`", meta["description"])
        for name, meta in sorted(metrics.items())
    ]
    lines = [
        f"## Telemetry in {app}",
        "",
        f"{app} collects anonymous usage telemetry: which commands run, how long they take "
        "and how they end, so that its maintainers can see what is used and what fails. "
        f"This section is generated from {app}'s telemetry schema (version "
        f"`{schema.version}`) by `{app} telemetry schema --format policy`, so it lists "
        "exactly what the code can send.",
        "",
        "### When anything is collected",
        "",
        *_when(settings),
        "",
        "### What is collected",
        "",
        "Each command becomes one OpenTelemetry span named after the command (such as "
        f"`{app} deploy`). Named parts of a command (phases) are child spans with their "
        "name, duration and error type.",
        "",
        "Per command:",
        "",
        *_table(("Field", "Kind", "Description", "Defined by"), span_rows),
        "",
        "About the installation (the same on every record):",
        "",
        *_table(("Field", "Kind", "Description"), resource_rows),
        "",
        "Metrics:",
        "",
        *_table(("Metric", "Kind", "Unit", "Description"), metric_rows),
        "",
        "The installation id is a random UUID (version 4) made on this machine when first "
        "needed; it says nothing about you or the machine.",
        "",
        "What each kind of field can hold (checked on this machine before anything is "
        "stored, and again by the collector):",
        "",
        *_table(("Kind", "Holds"), KIND_GUARANTEES),
        "",
        "Command and phase names are names (letters, digits and `_`, in parts joined by `.`, "
        "`-` or `/`): a command name that is not, or that looks like a secret or this "
        "machine's user or host name, is sent as `<redacted>`. "
        "`cli_telemetry.sdk.redacted` counts what was replaced or dropped in a record.",
        "",
        "### What is never collected",
        "",
        *[f"- {item}" for item in NEVER_COLLECTED],
        "",
        "### How to opt out",
        "",
        *_opt_out(settings),
        "",
        "### How to see what is collected",
        "",
        *_inspect(settings),
        "",
        "### Where the data goes",
        "",
        *_where(settings),
    ]
    if settings.options.policy_url:
        lines += ["", f"More: {settings.options.policy_url}"]
    return "\n".join(lines) + "\n"
