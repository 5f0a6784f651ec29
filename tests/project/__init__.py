"""Tests of procrun/project/."""
