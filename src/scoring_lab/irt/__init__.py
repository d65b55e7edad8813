"""The MERGE3 paper: multidimensional IRT and its estimators, items and their correctness under
merged models, evolutionary search with pymoo, and the chapter's study."""
