"""Health: how procrun and its processes tell who is ready (sd_notify)."""
