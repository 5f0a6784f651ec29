"""Restart on file change (`procrun start --watch`): which files count, and the watcher."""
