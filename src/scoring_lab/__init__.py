"""scoring-lab: a reproducible companion to four papers on efficient automated scoring."""
__version__ = "0.1.0"
