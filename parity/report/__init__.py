"""Report: the run's configuration and recorder, and the per-run JSON/Markdown report."""
