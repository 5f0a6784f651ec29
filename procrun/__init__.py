"""procrun: run a Procfile in a container, the way PID 1 should."""

__version__ = "0.1.0"
