"""Training throughput and inference latency of the default backbone on this machine.

    .venv/bin/python benchmarks/bench_backbone.py [--profile default] [--task gas_filled_balloons]

Prints, for the profile's backbone:
  * training throughput (responses/s per epoch) of one task, full fine-tune and the
    profile's own setting (top layers over cached lower states, length-grouped batches);
  * inference latency in ms per response at batch size 1 and 32 (dynamic padding).
Nothing is cached: every figure is measured now. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import platform
import resource
import time
from dataclasses import replace

import numpy as np
import torch

from scoring_lab.models.backbone import load_backbone
from scoring_lab.data import load_tasks
from scoring_lab.profiles import load_profile
from scoring_lab.models.scorer import Scorer, ScorerSpec
from scoring_lab.models.training import train_scorer


def training_throughput(task, settings, epochs: int) -> tuple[float, float]:
    """(responses per second over the training epochs, total seconds including setup)."""
    settings = replace(settings, max_epochs=epochs, patience=epochs + 1)
    t0 = time.perf_counter()
    result = train_scorer(task, settings, seed=0, progress=False)
    total = time.perf_counter() - t0
    per_epoch = float(result.history["seconds"].mean())
    return len(task.train) / per_epoch, total


def inference_latency(scorer: Scorer, texts: list[str], batch_size: int, repeats: int = 1) -> float:
    """Milliseconds per response when scoring ``texts`` in batches of ``batch_size``."""
    scorer.predict_proba(texts[: min(len(texts), 2 * batch_size)], batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        scorer.predict_proba(texts, batch_size=batch_size)
    return 1000 * (time.perf_counter() - t0) / (repeats * len(texts))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="default")
    p.add_argument("--task", default="gas_filled_balloons")
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()

    profile = load_profile(args.profile)
    task = load_tasks("synthetic", scale=profile.data.scale, difficulty=profile.data.difficulty,
                      val_fraction=profile.data.val_fraction, tasks=[args.task])[args.task]
    s = profile.train
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}")
    print(f"backbone: {s.backbone}; task {task.name}: {len(task.train)} training responses; "
          f"{args.epochs} epochs per measurement")

    full = replace(s, trainable_layers=None, lora=None)
    rps, total = training_throughput(task, full, args.epochs)
    print(f"train, full fine-tune, max_length {s.max_length}, grouped={s.group_by_length}: "
          f"{rps:7.1f} responses/s ({1000 / rps:.1f} s per epoch per 1,000 responses; {total:.1f} s in all)")
    if s.trainable_layers is not None:
        rps, total = training_throughput(task, s, args.epochs)
        print(f"train, profile (top {s.trainable_layers} layers over cached states): {rps:7.1f} responses/s "
              f"({1000 / rps:.1f} s per epoch per 1,000 responses; {total:.1f} s in all, caching included)")

    scorer = Scorer(load_backbone(s.backbone), ScorerSpec(s.backbone, "multilabel", task.n_labels,
                                                          max_length=s.max_length)).eval()
    texts = task.test.texts
    b1 = inference_latency(scorer, texts[:100], batch_size=1)
    b32 = inference_latency(scorer, texts, batch_size=32)
    print(f"inference, batch 1:  {b1:6.2f} ms per response ({1000 / b1:6.1f} responses/s), {100} responses")
    print(f"inference, batch 32: {b32:6.2f} ms per response ({1000 / b32:6.1f} responses/s), {len(texts)} responses")
    lengths = [len(x) for x in scorer.tokenizer(texts)["input_ids"]]
    print(f"token lengths of those responses: mean {np.mean(lengths):.1f}, max {max(lengths)}")
    print(f"peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
