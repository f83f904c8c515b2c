"""Wiring of the long-running commands: ``run`` and ``room`` sessions, signals, the dashboard, ``doctor``."""
