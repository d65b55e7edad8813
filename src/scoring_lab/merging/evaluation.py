"""Per-task scorers and merges of them, run over shared frozen states (GW and IRT chapters).

A per-task scorer saved only what it trained: on ``default`` its top two encoder layers
and its head. Here the backbone is loaded once; a model is its trainable layers with a
scorer's (or a merge's) weights loaded into them, run over a split's
:class:`~scoring_lab.models.frozen_states.FrozenStates`, with a task's own head on top. So a
merge costs only the layers that differ from the frozen backbone, and no scorer is
rebuilt from its checkpoint for it. With full fine-tuning (``paper``) the states are token
ids and the whole encoder runs; the code is the same.

Every result is cached by what it depends on: the members' scorer keys, the merge
(:class:`Merge`), the split's content and this code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from safetensors.torch import load_file

from . import task_vectors as merging
from ..models.backbone import load_backbone
from ..models.cache import ArtifactCache, code_version
from ..data.task import Split, Task
from ..models.frozen_states import FrozenStates, StateMaker, first_trainable_layer
from ..models.per_task import SCORER_KIND, TrainedScorer, report, split_fingerprint
from ..profiles import TrainSettings
from ..models.scorer import Scorer, ScorerSpec
from transformers.masking_utils import create_bidirectional_mask

PROBA_KIND = "merged-proba"
FEATURES_KIND = "upper-features"
OWN = "own"   # a task's own fine-tuned scorer, no merge


@dataclass(frozen=True)
class Merge:
    """How a group's encoders are combined (see :mod:`scoring_lab.merging.task_vectors`).

    method: "own" (one task's own scorer) or one of :data:`scoring_lab.merging.task_vectors.METHODS`;
    coefficients: optional per-task, per-parameter-prefix scaling of the task vectors before the
    merge (layer-wise coefficients, :mod:`scoring_lab.merging.adamerging`), ``((task, ((prefix, c), ...)), ...)``;
    weights: optional per-member merge weights, in the group's order (the coefficients an evolutionary
    search tunes); density: TIES's and DARE's share kept, one for all members or one per member (a tuple in
    the group's order); seed: DARE's random drop.
    """

    method: str = "ties"
    density: float | tuple = 1.0
    scaling: float = 1.0
    coefficients: tuple = ()
    weights: tuple = ()
    seed: int = 0

    def __post_init__(self):
        if self.method not in (OWN, *merging.METHODS):
            raise ValueError(f"merge method must be {OWN!r} or one of {merging.METHODS}, got {self.method!r}")

    def label(self) -> str:
        if self.method == OWN:
            return "own scorer"
        if self.method == "average":
            return "average"
        weights = f", weights {', '.join(f'{w:.2f}' for w in self.weights)}" if self.weights else ""
        if self.method == "task_arithmetic":
            return f"task arithmetic (scaling {self.scaling:g}{weights})"
        if self.method in ("linear", "slerp"):
            return f"{self.method}{f' ({weights[2:]})' if weights else ''}"
        name = {"ties": "TIES", "dare_linear": "DARE + task arithmetic", "dare_ties": "DARE + TIES"}[self.method]
        density = ", ".join(f"{d:.2f}" for d in self.density) if isinstance(self.density, tuple) else \
            f"{self.density:g}"
        return f"{name} (density {density}, scaling {self.scaling:g}{weights})" + (
            " + layer-wise" if self.coefficients else "")


@dataclass
class ScorerParts:
    """What one scorer trained: encoder parameters (names as in ``Scorer.state_dict``, ``encoder.*``) and
    its head (``head.weight`` (n_logits, H), ``head.bias`` (n_logits,))."""

    spec: ScorerSpec
    encoder: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor]


def scorer_parts(trained: TrainedScorer) -> ScorerParts:
    """A cached scorer's trained weights, read from its checkpoint without building the model."""
    state = load_file(str(trained.cache.path(SCORER_KIND, trained.key) / "weights.safetensors"))
    head = {k: v.float() for k, v in state.items() if k.startswith(merging.HEAD_PREFIX)}
    if set(head) != {"head.weight", "head.bias"}:
        raise ValueError(f"scorer of {trained.task!r}: its checkpoint has no head ({sorted(head)})")
    return ScorerParts(trained.spec, merging.encoder_part(state), head)


class UpperModel:
    """A backbone's trainable layers, into which any scorer's or merge's encoder weights are loaded.

    ``base``: the pre-trained values of every encoder parameter (``encoder.*``), the theta_0 of merging."""

    def __init__(self, settings: TrainSettings, seed: int = 0):
        backbone = load_backbone(settings.backbone, seed=seed, dtype=settings.dtype,
                                 encoder_layers=settings.encoder_layers)
        spec = ScorerSpec(backbone=settings.backbone, kind="multilabel", n_outputs=1, pooling=settings.pooling,
                          dtype=settings.dtype, max_length=settings.max_length, encoder_layers=settings.encoder_layers)
        self.model = Scorer(backbone, spec).eval()
        self.layer = first_trainable_layer(settings, self.model.n_layers)
        self.pad_id = backbone.tokenizer.pad_token_id
        self.base = {k: v.detach().clone() for k, v in self.model.state_dict().items()
                     if not k.startswith(merging.HEAD_PREFIX)}
        self._loaded: set[str] = set()

    def load(self, encoder: dict[str, torch.Tensor]) -> None:
        """Set these encoder parameters; any set by an earlier load and not given now go back to ``base``."""
        unknown = sorted(set(encoder) - set(self.base))
        if unknown:
            raise KeyError(f"{len(unknown)} parameter(s) are not the backbone's, e.g. {unknown[:3]}")
        state = {n: self.base[n] for n in self._loaded - set(encoder)}
        state.update(encoder)
        self.model.load_state_dict(state, strict=False)
        self._loaded = set(encoder)

    @torch.no_grad()
    def embed(self, states: FrozenStates, batch_size: int = 64) -> np.ndarray:
        """(n, H) pooled final-layer embeddings of the loaded encoder over ``states``."""
        if states.layer != self.layer:
            raise ValueError(f"states enter layer {states.layer}, the trainable layers start at {self.layer}")
        out = np.zeros((len(states), self.base_width), dtype=np.float32)
        for idx, batch in states.batches(batch_size, self.pad_id):
            mask = batch["attention_mask"]
            if self.layer == 0:
                hidden = self.model.encoder.embeddings(input_ids=batch["input_ids"])
            else:
                hidden = batch["hidden"]
            out[idx] = self._embed_from(hidden, mask, self.layer).float().numpy()
        return out

    def _embed_from(self, hidden: torch.Tensor, mask: torch.Tensor, layer: int) -> torch.Tensor:
        """(B, H) pooled embedding from the (B, T, H) states entering ``layer``. With [CLS] pooling the
        last layer computes the [CLS] position only (its keys and values still see every token): the
        same numbers as the full layer at about a sixth of its cost (tested against ``Scorer.embed_from``)."""
        last = _encoder_blocks(self.model.encoder)[-1]
        if self.model.spec.pooling != "cls" or not _is_bert_layer(last):
            return self.model.embed_from(hidden, mask, layer)
        blocks = _encoder_blocks(self.model.encoder)
        if layer < len(blocks) - 1:   # the layers below the last, whole
            full_mask = create_bidirectional_mask(config=self.model.encoder.config, inputs_embeds=hidden,
                                                  attention_mask=mask)
            for block in blocks[layer:-1]:
                hidden = block(hidden, full_mask)
                hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return _cls_of_last_layer(last, hidden, mask)

    @property
    def base_width(self) -> int:
        return int(self.model.encoder.config.hidden_size)


def _encoder_blocks(encoder) -> torch.nn.ModuleList:
    return encoder.encoder.layer


def _is_bert_layer(block) -> bool:
    attention = getattr(block, "attention", None)
    return all(hasattr(getattr(attention, "self", None), a) for a in ("query", "key", "value", "attention_head_size")) \
        and hasattr(attention, "output") and hasattr(block, "feed_forward_chunk")


def _cls_of_last_layer(block, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, H) a BERT layer's output at position 0 ([CLS]) from its (B, T, H) input: the query of [CLS]
    attends over every real token (``mask`` (B, T)); the feed-forward runs on [CLS] alone."""
    attn = block.attention.self
    b, t, _ = hidden.shape
    heads, size = attn.num_attention_heads, attn.attention_head_size

    def split(x, length):
        return x.view(b, length, heads, size).transpose(1, 2)

    q = split(attn.query(hidden[:, :1]), 1)
    k, v = split(attn.key(hidden), t), split(attn.value(hidden), t)
    keep = mask.bool()[:, None, None, :]                      # (B, 1, 1, T)
    context = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=attn.scaling)
    context = context.transpose(1, 2).reshape(b, 1, heads * size)
    attended = block.attention.output(context, hidden[:, :1])  # dense, dropout, LayerNorm(x + residual)
    return block.feed_forward_chunk(attended)[:, 0]


def head_probabilities(parts: ScorerParts, embeddings: np.ndarray) -> np.ndarray:
    """(n, L) label or (n, K) class probabilities of a task's head over (n, H) embeddings."""
    with torch.no_grad():
        logits = torch.nn.functional.linear(torch.from_numpy(embeddings), parts.head["head.weight"],
                                            parts.head["head.bias"])
        # Scorer.probabilities reads nothing but the spec
        return Scorer.probabilities(SimpleNamespace(spec=parts.spec), logits).numpy()


def decide(parts: ScorerParts, proba: np.ndarray) -> np.ndarray:
    """(n, L) 0/1 or (n,) classes, as the task's scorer decides."""
    return Scorer.decide(SimpleNamespace(spec=parts.spec), proba)


@dataclass
class MergeEvaluator:
    """Runs per-task scorers and merges of them over the tasks' shared frozen states, cached.

    ``scorers``: task -> its cached scorer (``run.scorers()``); ``settings``: the training settings they
    were trained with (which layers are frozen)."""

    scorers: dict[str, TrainedScorer]
    tasks: dict[str, Task]
    settings: TrainSettings
    seed: int = 0
    cache: ArtifactCache = None
    progress: bool = True
    batch_size: int = 64
    _states: dict = field(default_factory=dict, repr=False)
    _parts: dict = field(default_factory=dict, repr=False)
    _upper: UpperModel | None = field(default=None, repr=False)
    _maker: StateMaker | None = field(default=None, repr=False)

    def __post_init__(self):
        self.cache = self.cache or ArtifactCache()
        missing = sorted(set(self.tasks) - set(self.scorers))
        if missing:
            raise KeyError(f"no scorer for task(s) {missing}")

    # ---- building blocks (loaded on first use) ----------------------------------------
    @property
    def upper(self) -> UpperModel:
        if self._upper is None:
            self._upper = UpperModel(self.settings, self.seed)
        return self._upper

    @property
    def maker(self) -> StateMaker:
        if self._maker is None:
            self._maker = StateMaker(self.settings, self.seed, self.cache, self.progress)
        return self._maker

    def parts(self, task: str) -> ScorerParts:
        if task not in self._parts:
            self._parts[task] = scorer_parts(self.scorers[task])
        return self._parts[task]

    def states(self, task: str, split: Split, name: str) -> FrozenStates:
        key = (task, name, split_fingerprint(split))
        if key not in self._states:
            self._states[key] = self.maker.states(split, key[2], f"{task}, {name}")
        return self._states[key]

    def merged_encoder(self, group: tuple[str, ...], merge: Merge) -> dict[str, torch.Tensor]:
        """The encoder parameters of ``group`` merged by ``merge`` (a task's own for ``"own"``)."""
        if merge.method == OWN:
            if len(group) != 1:
                raise ValueError(f"'own' runs one task's scorer, got a group of {len(group)}")
            return self.parts(group[0]).encoder
        finetuned = [self.parts(t).encoder for t in group]
        if merge.coefficients:
            finetuned = [_scaled(self.upper.base, state, dict(merge.coefficients).get(t, ()))
                         for t, state in zip(group, finetuned)]
        if merge.weights and len(merge.weights) != len(group):
            raise ValueError(f"{len(merge.weights)} merge weights for a group of {len(group)}")
        return merging.merged_state(self.upper.base, finetuned, merge.method, merge.density, merge.scaling,
                                    merge.weights, merge.seed)

    # ---- results ------------------------------------------------------------------------
    def _inputs(self, what: dict, split: Split) -> dict:
        return {**what, "split": split_fingerprint(split), "settings": asdict(self.settings),
                "code": code_version(merging, first_trainable_layer, MergeEvaluator)}

    def probabilities(self, group: tuple[str, ...], merge: Merge, split_name: str = "test") -> dict[str, np.ndarray]:
        """{task: (n, L) or (n, K) probabilities on its ``split_name`` split} for every task of ``group``,
        each through the merged encoder and its own head."""
        group = tuple(group)
        keys = [self.scorers[t].key for t in group]
        loaded = []

        def compute(task: str, split: Split):
            if not loaded:   # the merge is built only when some member's result is not cached
                self.upper.load(self.merged_encoder(group, merge))
                loaded.append(True)
            return head_probabilities(self.parts(task), self.upper.embed(self.states(task, split, split_name),
                                                                         self.batch_size))

        out = {}
        for task in group:
            split = self.tasks[task].splits()[split_name]
            inputs = self._inputs({"group": keys, "task": self.scorers[task].key, "merge": asdict(merge)}, split)
            out[task] = self._cached(PROBA_KIND, inputs, lambda t=task, s=split: compute(t, s))
        return {t: out[t] for t in group}

    def predictions(self, group, merge: Merge, split_name: str = "test") -> dict[str, np.ndarray]:
        """{task: (n, L) 0/1 or (n,) classes} (see :meth:`probabilities`)."""
        return {t: decide(self.parts(t), p) for t, p in self.probabilities(group, merge, split_name).items()}

    def reports(self, group, merge: Merge, split_name: str = "test") -> dict[str, dict]:
        """{task: its metrics on ``split_name``} under the merge."""
        return {t: report(self.tasks[t], pred, split_name)
                for t, pred in self.predictions(group, merge, split_name).items()}

    def features(self, task: str, split: Split, name: str) -> np.ndarray:
        """(n, H) pooled final-layer embeddings of ``split``'s responses under ``task``'s own scorer
        (the GW paper's features)."""
        inputs = self._inputs({"task": self.scorers[task].key, "features": True}, split)

        def compute():
            self.upper.load(self.parts(task).encoder)
            return self.upper.embed(self.states(task, split, name), self.batch_size)

        return self._cached(FEATURES_KIND, inputs, compute)

    def pretrained_features(self, task: str, split: Split, name: str) -> np.ndarray:
        """(n, H) pooled final-layer embeddings of ``split``'s responses under the pre-trained encoder (no
        task's fine-tuning: the control for :meth:`features`)."""
        inputs = self._inputs({"task": "pre-trained", "features": True}, split)

        def compute():
            self.upper.load({})
            return self.upper.embed(self.states(task, split, name), self.batch_size)

        return self._cached(FEATURES_KIND, inputs, compute)

    def _cached(self, kind: str, inputs: dict, compute):
        def produce(folder: Path):
            np.save(folder / "values.npy", compute())

        value, _ = self.cache.get_or_compute(kind, inputs, produce, lambda art: np.load(art.file("values.npy")))
        return value


def _scaled(base: dict[str, torch.Tensor], state: dict[str, torch.Tensor], coefficients) -> dict[str, torch.Tensor]:
    """theta_0 + c * (theta - theta_0) per parameter, c the coefficient of the first prefix the name starts
    with (1 when none does)."""
    out = {}
    for name, value in state.items():
        c = next((float(v) for prefix, v in coefficients if name.startswith(prefix)), 1.0)
        out[name] = value if c == 1.0 else base[name] + c * (value.float() - base[name].float())
    return out
