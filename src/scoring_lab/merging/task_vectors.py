"""Merging fine-tuned scorers' encoders through task vectors (GW-SMM section 2.3; reused by the IRT chapter).

A task vector is what fine-tuning changed: tau_t = theta_t - theta_0 for every encoder
parameter, theta_0 the pre-trained backbone. A merge of tasks 1..k keeps theta_0 and
adds a combination of their task vectors; every task keeps its own head. Methods:

* ``average``: theta_0 + mean_t tau_t, the plain average of the fine-tuned weights;
* ``task_arithmetic``: theta_0 + scaling * sum_t tau_t;
* ``ties`` (TIES-merging): trim each tau_t to its largest-magnitude ``density`` share,
  elect a sign per entry (the sign of the summed trimmed vectors), average the entries
  that agree with it, then theta_0 + scaling * that, via ``peft.utils.merge_utils.ties``.
  peft trims each parameter tensor on its own, the TIES paper the whole vector at once;
* ``linear``: theta_0 + sum_t w_t tau_t / sum_t w_t, the weighted average of the weights
  (mergekit's ``linear``);
* ``dare_linear`` / ``dare_ties`` (DARE): drop each entry of tau_t with probability
  1 - ``density`` and rescale the rest by 1 / density, then task arithmetic or TIES's sign
  election (``peft.utils.merge_utils``); the drop is seeded;
* ``slerp``: spherical interpolation between two fine-tuned weights, tensor by tensor, at
  t = w_2 / (w_1 + w_2) (mergekit's ``slerp``; peft has none, and mergekit merges checkpoint
  files from a YAML recipe, so the few lines are written here over tensors in memory).

Every method takes per-scorer ``weights`` w_t (default 1): the merge coefficients an
evolutionary search tunes (the IRT chapter). TIES and DARE also take one ``density`` per scorer
(mergekit's and the MERGE3 reference code's genome: a weight and a density per model): each
tau_t is trimmed or dropped at its own density with peft's ``prune``, then peft's sign election
and disjoint merge run as in its ``ties`` / ``dare_ties``; equal densities give peft's numbers. peft's TIES and DARE-TIES elect the signs
from the unweighted vectors and weight the entries that agree.

Works for full and for partial fine-tuning alike: a parameter a scorer did not train
(on ``default``, every layer below the top two) has tau = 0 for it, so the merge leaves
it at theta_0, and a merged model still shares the frozen lower layers exactly.
"""
from __future__ import annotations

import math
import warnings
from typing import Mapping

import torch

METHODS = ("average", "linear", "task_arithmetic", "ties", "dare_linear", "dare_ties", "slerp")
DENSITY_METHODS = ("ties", "dare_linear", "dare_ties")
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
                  scaling: float = 1.0, weights=None, seed: int = 0,
                  base: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """One merged task vector from k task vectors. ``density``: TIES and DARE; ``scaling``: TIES, DARE
    and task arithmetic; ``weights`` (k,): every method but ``average`` (default 1 each); ``seed``: DARE's
    drop; ``base``: the pre-trained weights, which ``slerp`` (two vectors only) interpolates around."""
    if method not in METHODS:
        raise ValueError(f"merge method must be one of {METHODS}, got {method!r}")
    if not vectors:
        raise ValueError("nothing to merge")
    densities = [float(d) for d in (density if isinstance(density, (tuple, list)) else [density])]
    if any(not 0 < d <= 1 for d in densities):
        raise ValueError(f"density must be in (0, 1], got {density}")
    if len(densities) > 1 and (len(densities) != len(vectors) or method not in DENSITY_METHODS):
        raise ValueError(f"one density per task vector ({len(vectors)}) needs one of {DENSITY_METHODS}; got "
                         f"{len(densities)} for {method!r}")
    w = torch.ones(len(vectors)) if weights is None or len(weights) == 0 else torch.as_tensor(weights, dtype=torch.float32)
    if w.shape != (len(vectors),):
        raise ValueError(f"{len(w)} weights for {len(vectors)} task vectors")
    if method == "slerp":
        if len(vectors) != 2 or base is None:
            raise ValueError("slerp merges exactly two scorers and needs the base weights")
        if float(w.sum()) <= 0:
            raise ValueError("slerp needs weights with a positive sum")
        t = float(w[1] / w.sum())
        return {n: slerp(t, base[n].float() + vectors[0][n], base[n].float() + vectors[1][n]) - base[n].float()
                for n in vectors[0]}
    if method == "linear" and float(w.sum()) <= 0:
        raise ValueError("linear merging needs weights with a positive sum")
    from peft.utils import merge_utils   # here, not at import: peft takes seconds to import

    merged = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)   # DARE's drop; the caller's random state is left as it was
        for name in vectors[0]:
            parts = [v[name] for v in vectors]
            if method == "average":
                merged[name] = torch.stack(parts).mean(dim=0)
            elif method == "linear":
                merged[name] = merge_utils.task_arithmetic(parts, w) / w.sum()
            elif method == "task_arithmetic":
                merged[name] = scaling * merge_utils.task_arithmetic(parts, w)
            else:
                with warnings.catch_warnings():   # density 1 (no trimming) is a legitimate setting here
                    warnings.filterwarnings("ignore", message="The density .* no pruning")
                    merged[name] = scaling * (getattr(merge_utils, method)(parts, w, densities[0])
                                              if len(densities) == 1 else _per_member(parts, w, densities, method))
    return merged


def _per_member(parts: list[torch.Tensor], w: torch.Tensor, densities: list[float], method: str) -> torch.Tensor:
    """peft's ``ties`` / ``dare_ties`` / ``dare_linear`` of one parameter's task tensors, each pruned at its own
    density (peft's ``prune``: magnitude for TIES, random with rescaling for DARE), the rest as peft does."""
    from peft.utils import merge_utils

    dare = method.startswith("dare")
    pruned = torch.stack([merge_utils.prune(t, d, method="random" if dare else "magnitude", rescale=dare)
                          for t, d in zip(parts, densities)])
    weighted = pruned * merge_utils.reshape_weight_task_tensors(pruned, w)
    if method == "dare_linear":
        return weighted.sum(dim=0)
    return merge_utils.disjoint_merge(weighted, merge_utils.calculate_majority_sign_mask(pruned, method="total"))


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation from ``v0`` (t = 0) to ``v1`` (t = 1) along the arc between their
    directions (any shape, flattened for the angle); nearly parallel tensors are interpolated linearly."""
    a, b = v0.flatten().double(), v1.flatten().double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return (1 - t) * v0 + t * v1
    dot = float(torch.clamp((a / na) @ (b / nb), -1.0, 1.0))
    if abs(dot) > dot_threshold:
        return (1 - t) * v0 + t * v1
    theta = math.acos(dot)
    s0, s1 = math.sin((1 - t) * theta) / math.sin(theta), math.sin(t * theta) / math.sin(theta)
    return (s0 * v0.double() + s1 * v1.double()).to(v0.dtype)


def merged_state(base: Mapping[str, torch.Tensor], finetuned: list[Mapping[str, torch.Tensor]],
                 method: str = "ties", density: float = 0.2, scaling: float = 1.0, weights=None,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """theta_0 + the merged task vector, for every parameter any scorer changed (in the base's dtype);
    the others stay the base's and are left out. Arguments as :func:`merge_vectors`."""
    vectors = task_vectors(finetuned, base)
    tau = merge_vectors(vectors, method, density, scaling, weights, seed, base)
    return {n: (base[n].detach().float() + t).to(base[n].dtype) for n, t in tau.items()}
