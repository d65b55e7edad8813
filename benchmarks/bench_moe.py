"""Seconds per training epoch of the MoE chapter's multi-task models, and their latency, on this machine.

    .venv/bin/python benchmarks/bench_moe.py [--profile default] [--epochs 1] [--threads 2]
                                             [--tokens] [--top-layers 1] [--bf16]

Measures, over the profile's training tasks (the paper's Tasks 1-7), one epoch (``--epochs``) of:
MTL and the pooled MoE with the encoder frozen (the ``default`` profile's models, over each
response's pooled final state), the token-wise MoE with the encoder frozen (``--tokens``: the
paper's text, over every token's final state), and MTL and the pooled MoE with the encoder's top
``--top-layers`` layers trained as well (the chapter's trained column; ``--bf16``: in bfloat16 autocast,
as ``moe.encoder_autocast``). Then the latency per
response from raw text of a deployable MTL and MoE model (batch 1 and 32). The states come from
the artifact cache the chapter fills (what is missing is computed first). Not part of the tests:
the figures are printed.
"""
from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace

import torch

from scoring_lab.moe import multitask
from scoring_lab.models.latency import latency_per_response
from scoring_lab.moe.study import MoEStudy
from scoring_lab.book.run import setup


def epoch_seconds(study: MoEStudy, column, settings, epochs: int) -> tuple[float, int]:
    """(seconds per epoch, parameters trained) of a model on the study's training tasks in ``column`` (the
    study's frozen or trained one), trained here."""
    model = column.store.build(settings, study.old)
    train = {t: column.inputs.task_data(t, "train", settings) for t in study.old}
    val = {t: column.inputs.task_data(t, "val", settings) for t in study.old}
    trainable = [p for p in model.parameters() if p.requires_grad]
    t0 = time.perf_counter()
    multitask.train_multitask(model, train, val, replace(settings, max_epochs=epochs, patience=epochs + 1),
                              progress=False)
    return (time.perf_counter() - t0) / epochs, sum(p.numel() for p in trainable)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", action="store_true", help="also the token-wise MoE (tens of seconds an epoch)")
    ap.add_argument("--top-layers", type=int, default=1, help="layers trained in the comparison; 0 skips it")
    ap.add_argument("--bf16", action="store_true", help="the trained layers' epochs in bfloat16 autocast")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = setup("moe", args.profile)
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} torch threads, "
          f"cuda: {torch.cuda.is_available()}")
    base = run.profile.moe.model
    variants = [("frozen encoder", "MTL", replace(base, use_moe=False)),
                ("frozen encoder", "MoE on the pooled vector", replace(base, moe_on="pooled"))]
    if args.tokens:
        variants.append(("frozen encoder", "MoE on every token", replace(base, moe_on="tokens")))
    top = args.top_layers or run.profile.moe.trainable_layers or 1
    profile = replace(run.profile, moe=replace(run.profile.moe, trainable_layers=top))
    study = MoEStudy(run.tasks, run.scorers(progress=False), profile, run.cache, seed=run.seed, progress=False)
    columns = {"frozen encoder": study.frozen}
    if args.top_layers:
        label = study.setup.encoder_label + (" (bf16)" if args.bf16 else "")
        columns[label] = study.trained
        trained = replace(base, autocast="bf16" if args.bf16 else "no")
        variants += [(label, "MTL", replace(trained, use_moe=False)), (label, "MoE on the pooled vector",
                                                                       replace(trained, moe_on="pooled"))]
    print(f"\n{'encoder':<26} {'model':<26} {'s / epoch':>10} {'trained params':>15}")
    for where, name, settings in variants:
        seconds, params = epoch_seconds(study, columns[where], settings, args.epochs)
        print(f"{where:<26} {name:<26} {seconds:>10.1f} {params:>15,}")
    task = study.old[0]
    texts = list(study.tasks[task].test.texts)
    backbone = study.setup.backbone
    print(f"\nlatency per response from raw text ({task} test responses), ms:")
    for name, settings in (("MTL", replace(base, use_moe=False)), ("MoE (pooled)", replace(base, moe_on="pooled"))):
        model = multitask.deployable(study.frozen.store.build(settings, study.old), backbone.model)
        with torch.inference_mode():
            figures = [1000 * latency_per_response(lambda b: multitask.predict_texts(
                model, backbone.tokenizer, b, task, run.profile.train.max_length), texts, size, repeats=20,
                warmup=10)["seconds_per_response"] for size in (1, 32)]
        print(f"  {name:<14} batch 1: {figures[0]:6.1f}   batch 32: {figures[1]:6.1f}   "
              f"params: {multitask.parameter_count(model):,}")


if __name__ == "__main__":
    main()
