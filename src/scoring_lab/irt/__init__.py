"""The MERGE3 paper: multidimensional IRT and its estimators (estimators), items and their correctness
under merged models (items), the models sampled (search_space), the IRT calibration (calibration), the
estimators judged (evaluation, evaluation_tables), evolutionary search with pymoo (evolve, searches), the
chapter's tables and findings (report, findings), and the study that wires them (study)."""
