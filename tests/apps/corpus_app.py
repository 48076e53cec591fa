"""An app that plants every sample of a corpus through every channel an app can reach.

``CORPUS_FILE`` is a JSON list of strings. For each one, a generic ``command()`` named after
it (a dynamic name) runs with the sample as the value of a declared field of every kind (span,
phase and metric-point attributes), as a metric description, and in an exception's message;
the sample is also offered as a phase name, a metric name and a metric unit (static
declarations: the SDK must refuse them with ValueError, which this app catches and checks
does not repeat a secret). ``CORPUS_VERSION`` is passed as ``init(version=)``.

Prints ``refused N`` (static declarations refused) on stdout at the end.
"""

from __future__ import annotations

import json
import os

import otel_cli_telemetry as telemetry

FIELDS = {
    "corpus.text": telemetry.Text("free text"),
    "corpus.texts": telemetry.Text("free texts", many=True),
    "corpus.ident": telemetry.Identifier("an identifier"),
    "corpus.label": "a bare description (implicit identifier)",
    "corpus.mode": telemetry.Enum("a mode", values=["a", "b"]),
    "corpus.version": telemetry.Version("a version"),
    "corpus.took": telemetry.Duration("a duration"),
    "corpus.count": telemetry.Integer("a count"),
    "corpus.ratio": telemetry.Number("a ratio"),
    "corpus.flag": telemetry.Bool("a flag"),
}

telemetry.init(app="corpusapp", version=os.environ.get("CORPUS_VERSION", "1.0.0"), fields=FIELDS)
planted = telemetry.counter("corpus.planted", unit="{value}", description="values planted")


def refused(declare: object, sample: str) -> bool:
    """Whether the SDK refused a static declaration made of ``sample``."""
    try:
        declare()  # type: ignore[operator]
    except ValueError as error:
        message = str(error)
        assert "looks like a secret" not in message or sample not in message, message
        return True
    return False


def main() -> None:
    with open(os.environ["CORPUS_FILE"], encoding="utf-8") as handle:
        samples: list[str] = json.load(handle)
    refusals = 0
    for index, sample in enumerate(samples):
        refusals += refused(lambda s=sample: telemetry.phase(s), sample)
        refusals += refused(lambda s=sample: telemetry.counter(s), sample)
        refusals += refused(lambda s=sample: telemetry.histogram("corpus.h", unit=s), sample)
        values = dict.fromkeys(FIELDS, sample)
        values["corpus.texts"] = [sample, "plain"]  # type: ignore[assignment]
        try:
            with telemetry.command(sample):
                telemetry.set_attributes(values)
                point = dict.fromkeys(("corpus.text", "corpus.ident", "corpus.label"), sample)
                planted.add(1, point)
                telemetry.counter(f"corpus.d{index}", description=sample).add(1)
                with telemetry.phase("plant", attributes=values):
                    raise RuntimeError(f"failed with {sample}")
        except RuntimeError:
            pass
    print(f"refused {refusals}")


if __name__ == "__main__":
    main()
