"""reports: jobs submitted over HTTP, built by a Celery task, one row each."""
