"""Merging fine-tuned scorers: task-vector merges (linear, task arithmetic, TIES, DARE, SLERP), the
evaluation of merged models over shared frozen states, and AdaMerging's layer-wise coefficients.
Used by the GW and IRT chapters."""
