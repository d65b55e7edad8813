"""What a profile's MoE chapter costs to train on the machine at hand: the ledger of every model it trains
(:func:`scoring_lab.moe.cost.ledger`) priced with per-step seconds measured here.

    .venv/bin/python benchmarks/bench_moe_cost.py [--profile paper] [--device cuda] [--steps 3]
                                                  [--threads 2] [--out moe_cost.csv] [--skip teacher]

For each stage the ledger names (what one training step runs: pooled or token states, the encoder's top
layers, the whole encoder, a teacher), one model of that stage is built over an encoder of the profile's
backbone shape with random weights (a step's cost does not depend on the weights, and the shape is all
that is needed, so nothing is downloaded: a name the machine has no files for is built from its published
shape when it is one of ``SHAPES``), and its training steps are timed on ``--device`` over batches of the
run's own response lengths, cut at the profile's ``train.max_length``; FLOPs per step are counted
(torch's FlopCounterMode) beside. The ledger's ``max_steps`` (epoch caps; early stopping takes fewer)
times those seconds is each group's upper bound in hours. Run on a GPU, this is what the ``paper``
profile costs there; on a CPU, what it would cost on that CPU. Not part of the tests: the figures are
printed (and written with ``--out``).
"""
from __future__ import annotations

import argparse
import platform
from dataclasses import replace

import pandas as pd
import torch
from transformers import AutoConfig, AutoTokenizer, BertConfig, BertModel

from scoring_lab.book.run import setup
from scoring_lab.models.backbone import PACKAGED_MINILM, TINY_RANDOM, load_backbone
from scoring_lab.models.scorer import tokenize
from scoring_lab.moe import cost

# the published shapes of the profiles' named backbones (transformers' BertConfig defaults are bert-base's)
SHAPES = {"bert-base-uncased": {}, "bert-large-uncased": {"hidden_size": 1024, "num_hidden_layers": 24,
                                                          "num_attention_heads": 16, "intermediate_size": 4096}}


def config_of(name: str):
    """The model config of ``name`` from files the machine has (the packaged backbones included), else its
    published shape (:data:`SHAPES`)."""
    if name in (PACKAGED_MINILM, TINY_RANDOM):
        return load_backbone(name).model.config
    try:
        return AutoConfig.from_pretrained(name, local_files_only=True)
    except OSError:
        if name not in SHAPES:
            raise SystemExit(f"no local files for {name!r} and no published shape for it here: {sorted(SHAPES)}")
        return BertConfig(**SHAPES[name])


def tokenizer_of(name: str):
    """``name``'s tokenizer, else the packaged MiniLM's (the same WordPiece vocabulary as bert-base-uncased)."""
    if name in (PACKAGED_MINILM, TINY_RANDOM):
        return load_backbone(name).tokenizer
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except OSError:
        return load_backbone(PACKAGED_MINILM).tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the priced ledger here (CSV)")
    ap.add_argument("--skip", nargs="*", default=[], help="stages not to time (their rows stay unpriced)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = setup("moe", args.profile)
    profile = run.profile
    table = cost.ledger(profile, run.tasks)
    train, settings = profile.train, profile.moe.model
    tok = tokenizer_of(train.backbone)
    lengths = [len(ids) for t in run.tasks.values() for ids in tokenize(tok, list(t.train.texts), train.max_length)]
    batch = cost.batch_lengths(lengths, settings.batch_size, train.max_length)
    teacher = replace(train, **profile.moe.teacher) if profile.moe.teacher else train
    print(f"machine: {platform.processor() or platform.machine()}, device {args.device}, {args.threads} torch "
          f"threads; profile {profile.name}; backbone {train.backbone}; batch {settings.batch_size}, mean length "
          f"{batch.mean():.0f} tokens (max {train.max_length})")
    measured, flops = {}, {}
    for stage in table["stage"].unique():
        if stage in args.skip:
            continue
        name, timed = train.backbone, stage
        if stage == cost.TEACHER:   # a teacher's step: LoRA, its top layers or the whole encoder, as it trains
            name = teacher.backbone
            if teacher.lora is None and teacher.trainable_layers is not None:
                timed = cost.layers_stage(teacher.trainable_layers)
        encoder = BertModel(config_of(name), add_pooling_layer=False)
        m = cost.measure_step(encoder, timed, replace(settings, autocast="bf16" if train.mixed_precision == "bf16"
                                                      else "no"), batch, steps=args.steps, device=args.device,
                              lora=teacher.lora if timed == cost.TEACHER else None)
        measured[stage], flops[stage] = m["seconds"], m["flops"]
        print(f"  {stage:<22} {m['seconds']:8.3f} s / step   {m['flops'] / 1e12:8.3f} TFLOP / step")
    priced = cost.costed(table, measured)
    priced["tflop_per_step"] = priced["stage"].map(flops) / 1e12
    pd.set_option("display.width", 200)
    print()
    print(priced.to_string(index=False, float_format=lambda x: f"{x:,.3f}"))
    if args.out:
        priced.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
