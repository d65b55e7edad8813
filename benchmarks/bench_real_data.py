"""Per-task scorers against the classical reference points on real answers (SciEntsBank).

    .venv/bin/python benchmarks/bench_real_data.py [PATH] [--profile default] [--set KEY=VALUE ...]

PATH: your copy of SemEval-2013 SciEntsBank in the PASTA layout (12 FOSS modules, binary
correctness, official train and unseen-answers test split); by default
``data/semeval2013-scientsbank`` inside the project. Without it the benchmark says so and
exits 0.

Prints, pooled over every module's test split (as the data's README measures its
reference points): accuracy and macro-F1 over the two classes of

* the per-task scorers of the profile (trained once, then taken from the artifact cache;
  ``--set`` changes one training setting, e.g. ``--set pooling=cls --set lr=1e-4``),
  with their validation figures, the levers' training time and best epochs;
* TF-IDF + logistic regression per module (this project's baseline, C chosen on validation);
* the README's reference points: TF-IDF + LR 0.739 / 0.729 and frozen all-MiniLM-L6-v2
  embeddings + LR 0.765 / 0.757 (measured there training on all of ``_train``).

``--nested`` measures a choice without the test split: a second validation split, as large as
the first, is carved (stratified, seeded) from each module's training answers; the scorers
train on the rest, early-stop on the first validation split, and are scored on the second in
place of test (the reference points do not apply there). ``--nested`` against
``--nested --set refit=true`` is how the refit lever was measured.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from scoring_lab.models.baseline import fit_tfidf_baselines
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.cli import parameter_value
from scoring_lab.data import load_tasks
from scoring_lab.data.splits import carve_validation
from scoring_lab.data.task import Task
from scoring_lab.models.per_task import get_scorers
from scoring_lab.profiles import load_profile

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "data" / "semeval2013-scientsbank"   # inside the project; put your copy there, or pass PATH
#: the data README's reference points: pooled test (accuracy, macro-F1)
REFERENCE = {"TF-IDF + LR (data README)": (0.739, 0.729), "frozen MiniLM + LR (data README)": (0.765, 0.757)}


def pooled(tasks, models, split: str) -> tuple[float, float]:
    """Accuracy and macro-F1 (over the classes 0 and 1) of the single label, pooled over tasks."""
    y = np.concatenate([getattr(t, split).labels[:, 0] for t in tasks.values()])
    p = np.concatenate([models[n].predict(getattr(t, split))[:, 0] for n, t in tasks.items()])
    return float(accuracy_score(y, p)), float(f1_score(y, p, average="macro"))


def nested(task: Task, seed: int) -> Task:
    """``task`` with a second validation split (as large as ``task.val``, stratified, seeded) carved
    from its training answers in place of the test split."""
    rest, val2 = carve_validation(task.train, len(task.val) / len(task.train), seed + 1)
    return Task(name=task.name, kind=task.kind, train=rest, val=task.val, test=val2,
                label_names=task.label_names, n_classes=task.n_classes, meta=task.meta)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", nargs="?", default=str(DEFAULT_PATH))
    ap.add_argument("--profile", default="default")
    ap.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE",
                    help="change one training setting of the profile (a value as papermill -p reads it: 5e-5, true, cls)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nested", action="store_true",
                    help="score a second validation split carved from train instead of test")
    args = ap.parse_args(argv)
    if not Path(args.path).is_dir():
        print(f"no SciEntsBank folder at {args.path}: nothing to measure (pass the PASTA-layout folder)")
        return 0
    profile = load_profile(args.profile)
    changes = {k: parameter_value(v) for k, _, v in (c.partition("=") for c in args.changes)}
    settings = replace(profile.train, **changes)
    tasks = load_tasks("pasta-csv", args.path, seed=args.seed, val_fraction=profile.data.val_fraction)
    if args.nested:
        tasks = {name: nested(t, args.seed) for name, t in tasks.items()}
    heldout = "val2" if args.nested else "test"
    n = {s: sum(len(getattr(t, s)) for t in tasks.values()) for s in ("train", "val", "test")}
    print(f"{len(tasks)} tasks, {n['train']} train / {n['val']} val / {n['test']} {heldout} responses; "
          f"profile {profile.name}, changes {changes or 'none'}, seed {args.seed}")

    t0 = time.perf_counter()
    baselines = fit_tfidf_baselines(tasks, seed=args.seed)
    baseline_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorers = get_scorers(tasks, settings, args.seed, ArtifactCache(), progress=sys.stderr.isatty())
    wall = time.perf_counter() - t0
    trained = sum(s.info["seconds"] for s in scorers.values())

    rows = [("per-task scorers", *pooled(tasks, scorers, "val"), *pooled(tasks, scorers, "test")),
            ("TF-IDF + LR (this project)", *pooled(tasks, baselines, "val"), *pooled(tasks, baselines, "test"))]
    if not args.nested:
        rows += [(name, np.nan, np.nan, *ref) for name, ref in REFERENCE.items()]
    print(f"\n{'model':<34} {'val acc':>8} {'val F1':>8} {heldout + ' acc':>9} {heldout + ' F1':>8}")
    for name, va, vf, ta, tf in rows:
        print(f"{name:<34} {va:>8.3f} {vf:>8.3f} {ta:>9.3f} {tf:>8.3f}")
    print(f"\nscorers: training {trained / 60:.1f} min when trained (this call {wall / 60:.1f} min, "
          f"{sum(not s.from_cache for s in scorers.values())} trained now); best epochs "
          f"{[s.info['best_epoch'] for s in scorers.values()]} of {settings.max_epochs}")
    print(f"TF-IDF + LR: {baseline_seconds:.1f} s for all tasks; C per task "
          f"{ {k: b.C for k, b in baselines.items()} }")
    ours = rows[0][3:]
    for name, ref in ({} if args.nested else REFERENCE).items():
        print(f"beats {name}: accuracy {ours[0] > ref[0]}, macro-F1 {ours[1] > ref[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
