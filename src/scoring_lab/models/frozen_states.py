"""The frozen lower layers' states of a split's responses, computed once and shared by every model above.

On partial fine-tuning (``train.trainable_layers = k``, the ``default`` profile) every
per-task scorer keeps the backbone's embeddings and lower ``n - k`` layers exactly as
pre-trained, so the states entering layer ``n - k`` are the same whichever scorer, merge
or multi-task model runs on top. They are computed here once per split (cached), and
the GW features, the merged models and the IRT chapter's population run only the
layers above them (:mod:`scoring_lab.merging.evaluation`).

With full fine-tuning or LoRA (``paper``) nothing below is shared: :func:`first_trainable_layer`
is 0 and the states are the token ids themselves, which every model embeds on its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import backbone as backbone_module
from .cache import ArtifactCache, code_version
from ..data.task import Split
from ..profiles import TrainSettings
from .scorer import length_sorted_batches, pad_ids, tokenize

STATES_KIND = "frozen-states"


def first_trainable_layer(settings: TrainSettings, n_layers: int) -> int:
    """The first encoder layer a scorer trained with ``settings`` changes (0: all of them, the
    embeddings too). Mirrors ``training._freeze_for``: LoRA adapts every layer, ``trainable_layers``
    k leaves the lower ``n_layers - k`` as pre-trained."""
    if settings.lora is not None or settings.trainable_layers is None or settings.trainable_layers >= n_layers:
        return 0
    return n_layers - settings.trainable_layers


@dataclass
class FrozenStates:
    """A split's inputs to the trainable layers, one response after another.

    layer 0: ``ids`` holds each response's token ids (nothing is shared below layer 0);
    layer l > 0: ``values`` (sum of lengths, H) float32 holds the states entering layer l, the
    rows of response i being ``values[offsets[i]:offsets[i + 1]]``.
    """

    layer: int
    offsets: np.ndarray                 # (n + 1,)
    values: np.ndarray | None = None    # (sum T_i, H), layer > 0
    ids: list[list[int]] | None = None  # layer 0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def select(self, rows) -> "FrozenStates":
        """The states of responses ``rows`` (positions), in that order."""
        rows = np.asarray(rows, dtype=int)
        lengths = self.lengths[rows]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        if self.layer == 0:
            return FrozenStates(0, offsets, ids=[self.ids[i] for i in rows])
        values = np.concatenate([self.values[self.offsets[i]:self.offsets[i + 1]] for i in rows]) if len(rows) \
            else self.values[:0]
        return FrozenStates(self.layer, offsets, values=values)

    def batches(self, batch_size: int, pad_id: int = 0):
        """Yield (positions, batch) with batch ``{"input_ids", "attention_mask"}`` (layer 0) or
        ``{"hidden" (B, T, H), "attention_mask" (B, T)}``, padded to each batch's longest response,
        responses of similar length together."""
        for idx in length_sorted_batches(self.lengths, batch_size):
            if self.layer == 0:
                ids, mask = pad_ids([self.ids[i] for i in idx], pad_id)
                yield idx, {"input_ids": ids, "attention_mask": mask}
                continue
            width = int(self.lengths[idx].max())
            hidden = torch.zeros((len(idx), width, self.values.shape[1]), dtype=torch.float32)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for j, i in enumerate(idx):
                a, b = self.offsets[i], self.offsets[i + 1]
                hidden[j, : b - a] = torch.from_numpy(self.values[a:b])
                mask[j, : b - a] = 1
            yield idx, {"hidden": hidden, "attention_mask": mask}


def states_inputs(split_fingerprint: str, settings: TrainSettings, seed: int, layer: int) -> dict:
    """What a split's frozen states depend on: the backbone and how it is cut and read, the split, the code."""
    return {"split": split_fingerprint, "backbone": settings.backbone, "dtype": settings.dtype,
            "encoder_layers": settings.encoder_layers, "max_length": settings.max_length, "layer": layer,
            "seed": int(seed) if settings.backbone == backbone_module.TINY_RANDOM else 0,
            "code": code_version(backbone_module, first_trainable_layer)}


class StateMaker:
    """Computes frozen states with one loaded backbone (its lower layers), cached by split.

    ``layer``: the states entering this layer (0 .. the backbone's layer count, which gives the final
    layer's output, for models that keep the whole encoder frozen); by default the first layer that
    ``settings`` trains."""

    def __init__(self, settings: TrainSettings, seed: int = 0, cache: ArtifactCache | None = None,
                 progress: bool = True, layer: int | None = None):
        self.settings, self.seed, self.progress = settings, seed, progress
        self.cache = cache or ArtifactCache()
        self._backbone, self._layer, self._asked = None, None, layer

    @property
    def backbone(self):
        """The backbone cut to its frozen layers (loaded on first use)."""
        if self._backbone is None:
            b = backbone_module.load_backbone(self.settings.backbone, seed=self.seed, dtype=self.settings.dtype,
                                              encoder_layers=self.settings.encoder_layers)
            self._layer = first_trainable_layer(self.settings, b.n_layers) if self._asked is None else self._asked
            if not 0 <= self._layer <= b.n_layers:
                raise ValueError(f"states can enter layers 0 to {b.n_layers} of {self.settings.backbone}, "
                                 f"not {self._layer}")
            self._backbone = backbone_module.keep_lower_layers(b, max(self._layer, 1))
            self._backbone.model.eval()
        return self._backbone

    @property
    def layer(self) -> int:
        """The first trainable layer: the states computed are those entering it."""
        self.backbone
        return self._layer

    def states(self, split: Split, fingerprint: str, name: str = "") -> FrozenStates:
        """The split's :class:`FrozenStates` (``fingerprint``: the split's content hash)."""
        ids = tokenize(self.backbone.tokenizer, split.texts, self.settings.max_length)
        offsets = np.concatenate([[0], np.cumsum([len(x) for x in ids])]).astype(np.int64)
        if self.layer == 0:
            return FrozenStates(0, offsets, ids=ids)

        def produce(folder: Path):
            np.save(folder / "values.npy", self._compute(ids, name))
            np.save(folder / "offsets.npy", offsets)

        def load(art):
            return FrozenStates(self.layer, np.load(art.file("offsets.npy")), values=np.load(art.file("values.npy")))

        value, _ = self.cache.get_or_compute(STATES_KIND, states_inputs(fingerprint, self.settings, self.seed,
                                                                        self.layer), produce, load)
        return value

    @torch.no_grad()
    def _compute(self, ids: list[list[int]], name: str) -> np.ndarray:
        model = self.backbone.model   # its lower `layer` layers only
        out: list[np.ndarray | None] = [None] * len(ids)
        batches = length_sorted_batches([len(x) for x in ids], self.settings.eval_batch_size)
        for idx in tqdm(batches, desc=f"frozen layers{' (' + name + ')' if name else ''}", leave=False,
                        disable=not self.progress):
            input_ids, mask = pad_ids([ids[i] for i in idx], self.backbone.tokenizer.pad_token_id)
            h = model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # = hidden_states[layer]
            for j, i in enumerate(idx):
                out[i] = h[j, : len(ids[i])].float().numpy()
        width = self.backbone.hidden_size
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, width), np.float32)
