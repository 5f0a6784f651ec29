"""Tests of procrun/health/."""
