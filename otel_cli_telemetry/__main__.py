"""``python -m otel_cli_telemetry``: the admin command."""

from .admin.cli import main

raise SystemExit(main())
