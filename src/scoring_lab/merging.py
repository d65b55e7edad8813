"""Merging fine-tuned scorers' encoders through task vectors (GW-SMM section 2.3; reused by the IRT chapter).

A task vector is what fine-tuning changed: tau_t = theta_t - theta_0 for every encoder
parameter, theta_0 the pre-trained backbone. A merge of tasks 1..k keeps theta_0 and
adds a combination of their task vectors; every task keeps its own head. Methods:

* ``average``: theta_0 + mean_t tau_t, the plain average of the fine-tuned weights;
* ``task_arithmetic``: theta_0 + scaling * sum_t tau_t;
* ``ties`` (TIES-merging): trim each tau_t to its largest-magnitude ``density`` share,
  elect a sign per entry (the sign of the summed trimmed vectors), average the entries
  that agree with it, then theta_0 + scaling * that, via ``peft.utils.merge_utils.ties``.
  peft trims each parameter tensor on its own, the TIES paper the whole vector at once.

Works for full and for partial fine-tuning alike: a parameter a scorer did not train
(on ``default``, every layer below the top two) has tau = 0 for it, so the merge leaves
it at theta_0, and a merged model still shares the frozen lower layers exactly.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import torch

METHODS = ("average", "task_arithmetic", "ties")
HEAD_PREFIX = "head."


def encoder_part(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A scorer's state without its head (``head.*``): what merging combines."""
    return {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}


def task_vectors(finetuned: list[Mapping[str, torch.Tensor]], base: Mapping[str, torch.Tensor]
                 ) -> list[dict[str, torch.Tensor]]:
    """tau_t = theta_t - theta_0 per scorer, over the union of the parameters any of them changed.

    ``finetuned``: each scorer's encoder parameters (all, or only those it trained); ``base``: the
    pre-trained encoder's, under the same names. A name a scorer lacks counts as untrained (tau 0)."""
    names = sorted(set().union(*(set(encoder_part(s)) for s in finetuned)))
    missing = [n for n in names if n not in base]
    if missing:
        raise KeyError(f"{len(missing)} fine-tuned parameter(s) are not in the base model, e.g. {missing[:3]}")
    out = []
    for state in finetuned:
        tau = {}
        for n in names:
            if n in state:
                if state[n].shape != base[n].shape:
                    raise ValueError(f"parameter {n}: fine-tuned shape {tuple(state[n].shape)}, base "
                                     f"{tuple(base[n].shape)}")
                tau[n] = state[n].detach().float() - base[n].detach().float()
            else:
                tau[n] = torch.zeros_like(base[n], dtype=torch.float32)
        out.append(tau)
    return out


def merge_vectors(vectors: list[Mapping[str, torch.Tensor]], method: str = "ties", density: float = 0.2,
                  scaling: float = 1.0) -> dict[str, torch.Tensor]:
    """One merged task vector from k task vectors (``density`` for TIES, ``scaling`` for TIES and task
    arithmetic; plain averaging takes neither)."""
    if method not in METHODS:
        raise ValueError(f"merge method must be one of {METHODS}, got {method!r}")
    if not vectors:
        raise ValueError("nothing to merge")
    if not 0 < density <= 1:
        raise ValueError(f"TIES density must be in (0, 1], got {density}")
    from peft.utils import merge_utils   # here, not at import: peft takes seconds to import

    ones = torch.ones(len(vectors))
    merged = {}
    for name in vectors[0]:
        parts = [v[name] for v in vectors]
        if method == "average":
            merged[name] = torch.stack(parts).mean(dim=0)
        elif method == "task_arithmetic":
            merged[name] = scaling * merge_utils.task_arithmetic(parts, ones)
        else:
            with warnings.catch_warnings():   # density 1 (no trimming) is a legitimate setting here
                warnings.filterwarnings("ignore", message="The density .* no pruning")
                merged[name] = scaling * merge_utils.ties(parts, ones, density)
    return merged


def merged_state(base: Mapping[str, torch.Tensor], finetuned: list[Mapping[str, torch.Tensor]],
                 method: str = "ties", density: float = 0.2, scaling: float = 1.0) -> dict[str, torch.Tensor]:
    """theta_0 + the merged task vector, for every parameter any scorer changed (in the base's dtype);
    the others stay the base's and are left out."""
    vectors = task_vectors(finetuned, base)
    tau = merge_vectors(vectors, method, density, scaling)
    return {n: (base[n].detach().float() + t).to(base[n].dtype) for n, t in tau.items()}
