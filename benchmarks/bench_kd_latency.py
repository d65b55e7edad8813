"""Latency of the KD chapter's models on this CPU: teacher, small transformer, ANN, and the KD student
under PyTorch and under ONNX Runtime, at batch 1 and batch 32.

    .venv/bin/python benchmarks/bench_kd_latency.py [--profile default] [--set dry_ice_model] [--threads 1]

Models come from the artifact cache the chapter "Knowledge distillation" fills (what is missing is
trained first, and says so); the timings are measured now, on test responses, tokenization
included. Prints parameters, weights MB, the saved student's size, milliseconds per response, and
the ratios the paper claims (about 4,000x fewer parameters than the teacher, about 10x faster
than TinyBERT). Not part of the test suite.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

from scoring_lab.kd import deploy, footprint
from scoring_lab.kd import sets as kd_sets
from scoring_lab.kd.study import KDStudy
from scoring_lab.book.run import setup


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="default")
    p.add_argument("--set", default=None, help="a KD set by name (default: the first single-item set)")
    p.add_argument("--threads", type=int, default=1, help="PyTorch and onnxruntime intra-op threads")
    p.add_argument("--responses", type=int, default=64, help="test responses timed")
    args = p.parse_args()

    run = setup("kd", args.profile)
    sets = kd_sets.build_kd_sets(run.tasks, seed=run.seed)
    study = KDStudy(sets, run.profile, run.cache, seed=run.seed, progress=True, tasks=run.tasks)
    name = args.set or study.single_item_sets[0]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = deploy.export_onnx(study.models.kd_student(name, study.seed).student, Path(tmp) / "s.onnx")
        sizes = study.size_and_speed(name, onnx_path, n_responses=args.responses, threads=args.threads, repeats=7)
    print(f"\nKD models of {name!r}, profile {args.profile}, {platform.processor() or platform.machine()}, "
          f"{args.threads} thread(s), {args.responses} test responses")
    print(f"{'model':34s} {'parameters':>12s} {'weights MB':>11s} {'saved MB':>9s} {'ms/resp b1':>11s} "
          f"{'ms/resp b32':>12s}")
    for _, r in sizes.iterrows():
        saved = "" if r["saved_mb"] != r["saved_mb"] or r["saved_mb"] is None else f"{r['saved_mb']:.3f}"
        print(f"{r['model']:34s} {r['parameters']:>12,d} {r['weights_mb']:>11.2f} {saved:>9s} "
              f"{1000 * r['seconds_per_response_b1']:>11.3f} {1000 * r['seconds_per_response_b32']:>12.3f}")
    ratios = footprint.ratios(sizes)
    print(f"\nteacher / student parameters: {ratios['parameter_ratio']:,.0f}x (paper: about 4,000x)")
    print(f"small transformer / student parameters: {ratios['small_parameter_ratio']:,.0f}x")
    for b in (1, 32):
        print(f"speed-up over the small transformer, batch {b}: PyTorch {ratios[f'speedup_b{b}']:,.1f}x, "
              f"ONNX {ratios[f'speedup_onnx_b{b}']:,.1f}x (paper: about 10x); over the teacher "
              f"{ratios[f'teacher_speedup_b{b}']:,.1f}x")


if __name__ == "__main__":
    main()
