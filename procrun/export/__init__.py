"""`procrun export FORMAT`: the formation `start` would run, as one unit per process type on
another scheduler (Kubernetes Deployments, Compose services, systemd units, a Render Blueprint).
Every unit runs `procrun start TYPE`, so procrun stays the supervisor inside it; the generators
only translate what procrun already knows (counts, graces, probes, ports, dependencies) into
each platform's terms. Imported by the CLI's `export` command only."""
