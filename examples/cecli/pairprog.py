"""pairprog: an argparse CLI reproducing cecli's analytics policy (seed 002) with this SDK.

cecli's promises, and how each is kept here:

- Opt-in: nothing is collected until the user says yes. ``consent="ask"``: the question is
  asked on a terminal only, never in CI or a pipe.
- By default a random share of installations (10 %) is asked (``ask_share=0.1``; the draw
  is deterministic per installation, so the same users are asked each time, once).
- ``--analytics``: on for this session; the first time, the user confirms at the prompt. It
  has no effect once analytics were permanently disabled (by ``--analytics-disable`` or a
  "no" at the prompt): the SDK's consent state says so, and this CLI tells the user.
- ``--no-analytics``: off for this session. ``--analytics-disable``: off forever.
- ``--analytics-log FILE``: append every event to FILE (JSON lines), also with
  ``--no-analytics`` (then the events are logged and never sent).
- Custom destination: ``--analytics-endpoint URL`` (any OTLP/HTTP endpoint) and
  ``--analytics-header KEY=VALUE`` (e.g. a project API key), in place of PostHog's.
- What is collected: the model used (known model names only, others become ``other``) and
  its token counts (the GenAI semantic-convention metric ``gen_ai.client.token.usage``),
  the edit format, feature use (option names), and exceptions as ``error.type`` (the class).
  Never code, file contents, chat messages, keys or personal info.
- A random uuid4 installation id, made on first use.

Run: ``.venv/bin/python examples/cecli/pairprog.py --analytics --message "add a test" FILE``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import otel_cli_telemetry as telemetry

APP = "pairprog"
VERSION = "0.86.1"
ASK_SHARE = 0.1
POLICY_URL = "https://example.com/pairprog/docs/analytics.html"

#: Model names that are public products; anything else (a fine-tune, a private deployment)
#: is sent as "other", because its name may say who the user works for.
KNOWN_MODELS = frozenset(
    {
        "gpt-4o",
        "gpt-4.1",
        "o3-mini",
        "claude-sonnet-4",
        "claude-opus-4",
        "gemini-2.5-pro",
        "deepseek-chat",
        "deepseek-reasoner",
    }
)
FIELDS = {
    "gen_ai.request.model": "the model used (known public model names; others are 'other')",
    "gen_ai.token.type": "input or output, for token counts",
    "pairprog.edit_format": "which edit format was used: diff, whole or udiff",
}
NOTICE = (
    f"{APP} respects your privacy and never collects your code, prompts, chats, keys or any\n"
    f"personal info. For more info: {POLICY_URL}\n"
)


class ModelTimeoutError(Exception):
    """The (simulated) model did not answer in time."""


def analytics_options(argv: list[str]) -> argparse.Namespace:
    """Only the analytics switches, read before ``init()`` (they decide how it is called)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_analytics_arguments(parser)
    return parser.parse_known_args(argv)[0]


def add_analytics_arguments(parser: argparse.ArgumentParser) -> None:
    """The analytics switches, shared by the early parse and the full parser (for --help)."""
    group = parser.add_argument_group("analytics")
    group.add_argument(
        "--analytics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="enable/disable analytics for this session",
    )
    group.add_argument(
        "--analytics-disable", action="store_true", help="permanently disable analytics"
    )
    group.add_argument("--analytics-log", metavar="FILE", help="log analytics events to FILE")
    group.add_argument("--analytics-endpoint", metavar="URL", help="send to this OTLP endpoint")
    group.add_argument(
        "--analytics-header",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a header to send with analytics (repeatable)",
    )


def start_analytics(argv: list[str]) -> None:
    """Turn the analytics switches into one ``telemetry.init()`` call."""
    early = analytics_options(argv)
    if early.analytics_disable:
        from otel_cli_telemetry.admin import control

        control.disable(control.settings_for(APP))
        print("Analytics have been permanently disabled.", file=sys.stderr)
    if early.analytics_log:
        os.environ[f"{APP.upper()}_TELEMETRY_LOG"] = early.analytics_log
    if early.analytics_header:
        headers = [h for h in early.analytics_header if "=" in h]
        previous = os.environ.get("OTEL_EXPORTER_OTLP_HEADERS", "")
        os.environ["OTEL_EXPORTER_OTLP_HEADERS"] = ",".join(filter(None, [previous, *headers]))
    telemetry.init(
        app=APP,
        version=VERSION,
        consent="ask",
        # --analytics: ask now if never asked; otherwise a random share of installs is asked
        ask_share=1.0 if early.analytics else ASK_SHARE,
        enabled=False if early.analytics is False else None,
        endpoint=early.analytics_endpoint,
        fields=FIELDS,
        notice=NOTICE,
        policy_url=POLICY_URL,
    )
    state = telemetry.status()
    if early.analytics and not state["enabled"] and state.get("consent") == "denied":
        print("Analytics are permanently disabled; --analytics has no effect.", file=sys.stderr)


token_usage = telemetry.histogram(
    "gen_ai.client.token.usage", unit="{token}", description="tokens used per model request"
)


def model_label(model: str) -> str:
    """The model name if it is a known public one, else ``other``."""
    return model if model in KNOWN_MODELS else "other"


def chat(args: argparse.Namespace) -> None:
    """One (simulated) request to the model: the work whose use we measure."""
    telemetry.set_attributes(
        {"gen_ai.request.model": model_label(args.model), "pairprog.edit_format": args.edit_format}
    )
    prompt = args.message or ""
    for path in args.files:
        with open(path, encoding="utf-8") as handle:
            prompt += handle.read()
    with telemetry.phase("llm.request"):
        time.sleep(0.005)
        if args.simulate_error == "timeout":
            raise ModelTimeoutError(f"{args.model} timed out answering {args.message!r}")
        input_tokens, output_tokens = 1 + len(prompt) // 4, 42
    model = {"gen_ai.request.model": model_label(args.model)}
    token_usage.record(input_tokens, {**model, "gen_ai.token.type": "input"})
    token_usage.record(output_tokens, {**model, "gen_ai.token.type": "output"})
    print(f"(simulated reply from {args.model}: {input_tokens} tokens in, {output_tokens} out)")


def main(argv: list[str] | None = None) -> int:
    """Parse, chat, exit."""
    argv = sys.argv[1:] if argv is None else argv
    start_analytics(argv)
    parser = argparse.ArgumentParser(prog=APP, description="AI pair programming (an example).")
    parser.add_argument("files", nargs="*", help="files to add to the chat")
    parser.add_argument("--model", default="gpt-4o", help="the model to use")
    parser.add_argument("--edit-format", choices=["diff", "whole", "udiff"], default="diff")
    parser.add_argument("--message", "-m", help="a single message to send, then exit")
    parser.add_argument("--simulate-error", choices=["timeout"], help=argparse.SUPPRESS)
    add_analytics_arguments(parser)
    args = parser.parse_args(argv)
    if args.analytics_disable and not (args.message or args.files):
        return 0
    chat(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
