"""Tests of procrun/cli/."""
