"""Tests of procrun/output/."""
