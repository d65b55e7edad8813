"""The GW-SMM paper: Gromov-Wasserstein distances between tasks' feature clouds, merge plans over
their similarities, and the chapter's study (features, plans, merges, ablations, report)."""
