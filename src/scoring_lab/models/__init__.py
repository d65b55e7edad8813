"""The shared models every chapter stands on: the backbone, the per-task scorer and its fine-tuning,
the frozen lower-layer states, the TF-IDF baseline, ordinal decoding, the artifact cache, and how a
model is timed and its device named."""
