"""Capture: turn one run of a command into one record.

Integrations (``capture.integrations``) translate a framework's events into "command started,
named, ended"; :mod:`.session` owns the one active record; :mod:`.exits` maps how the command
ended to an exit code and ``error.type``; :mod:`.process` hooks the interpreter's exit paths.
"""
