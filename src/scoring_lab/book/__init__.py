"""The book's machinery, on top of everything else: a chapter's setup and saved outputs (run), the
executor (chapters), the determinism check (reproduce), figures (plots), table styling and the
offline Sphinx extension. Only notebooks, the command line and benchmarks import it."""
