"""``python -m otel_cli_telemetry``: the admin command."""

from .cli import main

raise SystemExit(main())
