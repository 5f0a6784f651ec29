"""Tests of procrun/control/."""
