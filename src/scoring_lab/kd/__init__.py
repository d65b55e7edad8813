"""The KD paper (Latif et al.): the KD data sets and teachers, the BiLSTM student and its
distillation loss, the ANN and small-transformer baselines, deployment (CSV scoring, ONNX), and the
chapter's study (:mod:`scoring_lab.kd.study`, a facade over its step modules)."""
