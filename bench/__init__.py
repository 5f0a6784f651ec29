"""The benchmark of procrun against honcho, supervisord and tini (issue 5): `python -m bench`.

tools.py configures each tool for a formation, runs.py launches one run and leaves nothing
behind, observe.py and procfs.py measure from outside (pipes, pidfds, /proc), relay.py,
stopping.py and footprint.py are the scenarios, targets.py judges the issue's targets, and
report.py writes docs/benchmarks.md. programs/ holds the children the tools supervise.
soak.py is the leak soak, a run of its own (`make bench-soak`), soakreport.py its result.
"""
