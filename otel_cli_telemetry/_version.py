"""The package version, read by the build and reported as ``telemetry.sdk.version``."""

__version__ = "0.1.0"
