"""The Spark engine of `framing ingest` and `framing score` (``--engine spark``): same records as the local engines."""
