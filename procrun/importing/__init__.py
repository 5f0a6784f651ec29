"""`procrun import supervisord FILE`: a supervisord.conf read as supervisord reads it, translated
into a Procfile, a procrun.toml and, for values that look like secrets, a .env file. What has no
equivalent is said, one line each, never silently dropped. Imported by the CLI's `import`
command only."""
