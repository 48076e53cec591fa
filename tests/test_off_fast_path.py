"""An off run reads the environment and nothing else.

``init()`` returns at once when the environment alone switches telemetry off
(``otel_cli_telemetry._switch``), before the configuration is even imported. These tests
check that the shortcut never disagrees with the full configuration (hypothesis over every
variable involved), that a real off process imports none of our modules but the package,
the switch and the version (no capture, config, privacy, JSON), creates no file, and that
``status()`` still explains the decision in full.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from otel_cli_telemetry import _switch
from otel_cli_telemetry.config import InitOptions, resolve

_switch_values = st.sampled_from(["", "0", "1", "true", "false", "no", "yes", "on", "off", "x"])


@settings(max_examples=500, deadline=None)
@given(
    app_switch=st.one_of(st.none(), _switch_values),
    do_not_track=st.one_of(st.none(), _switch_values),
    sdk_disabled=st.one_of(st.none(), st.sampled_from(["true", "TRUE ", "false", "1", ""])),
    extra=st.one_of(st.none(), _switch_values),
    debug=st.one_of(st.none(), st.sampled_from(["", "1"])),
    enabled=st.one_of(st.none(), st.booleans()),
)
def test_the_shortcut_agrees_with_the_full_configuration(
    tmp_path_factory: object,
    app_switch: str | None,
    do_not_track: str | None,
    sdk_disabled: str | None,
    extra: str | None,
    debug: str | None,
    enabled: bool | None,
) -> None:
    environ = {
        name: value
        for name, value in (
            ("MY_APP_TELEMETRY", app_switch),
            ("DO_NOT_TRACK", do_not_track),
            ("OTEL_SDK_DISABLED", sdk_disabled),
            ("MY_APP_NO_EVENTS", extra),
            ("MY_APP_TELEMETRY_DEBUG", debug),
        )
        if value is not None
    }
    opt_out = ("MY_APP_NO_EVENTS",)
    why = _switch.switched_off("my-app", enabled, opt_out, environ)
    options = InitOptions(
        app="my-app", enabled=enabled, opt_out_env=opt_out, state_dir="/nonexistent/state"
    )
    full = resolve(options, environ, interactive=False)
    if why is not None:
        assert not full.capture, (environ, enabled)
        assert full.decided_by == why
    environment_only = full.decided_by.startswith(
        ("init(enabled", "MY_APP_TELEMETRY=", "MY_APP_NO_EVENTS", "DO_NOT_TRACK", "OTEL_SDK")
    )
    if not full.enabled and environment_only and not debug:
        assert why == full.decided_by, "the shortcut missed an off run it could have taken"


OFF_SCRIPT = """
import sys
import otel_cli_telemetry as telemetry
telemetry.init(app="offapp", version="1", fields={"app.items": "items"})
clicks = telemetry.counter("app.clicks")
with telemetry.phase("work"):
    telemetry.set_attributes({"app.items": 1})
    clicks.add(1)
env = telemetry.subprocess_env({})
ours = sorted(m for m in sys.modules if m.startswith("otel_cli_telemetry"))
print(" ".join(ours))
import json
print(json.dumps(telemetry.status()))
"""


def test_an_off_run_imports_only_what_reading_the_environment_needs(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    for switch in ({"DO_NOT_TRACK": "1"}, {"OFFAPP_TELEMETRY": "0"}):
        result = subprocess.run(
            [sys.executable, "-c", OFF_SCRIPT],
            env={**cli_env, **switch},
            capture_output=True,
            check=True,
            timeout=60,
        )
        modules, status = result.stdout.decode().splitlines()
        assert modules.split() == [
            "otel_cli_telemetry",
            "otel_cli_telemetry._switch",
            "otel_cli_telemetry._version",
            "otel_cli_telemetry.instruments",
        ]
        assert result.stderr == b""
        assert not Path(cli_env["XDG_STATE_HOME"]).exists(), "an off run writes nothing"
        decided = json.loads(status)
        assert decided["enabled"] is False
        assert decided["decided_by"] in ("DO_NOT_TRACK is set", "OFFAPP_TELEMETRY=0")


def test_the_telemetry_subcommand_still_works_when_off(cli_env: dict[str, str]) -> None:
    """The shortcut is not taken when the command line may ask for ``telemetry``."""
    from support import run_app

    result = run_app("click_app.py", ["telemetry", "status"], {**cli_env, "DO_NOT_TRACK": "1"})
    assert result.returncode == 0, result.stderr
    assert b"DO_NOT_TRACK" in result.stdout
