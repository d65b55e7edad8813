"""A per-task scorer: encoder -> final-layer [CLS] (or mean of tokens) -> dropout -> linear head.

Multi-label (one logit per rubric dimension, BCE, threshold 0.5) or multi-class:
one logit per holistic score with cross-entropy (``head="softmax"``), or an
ordinal **cumulative** head (``head="cumulative"``): K-1 logits for P(score > k),
k = 0..K-2, each a binary cross-entropy (Niu et al., 2016, ordinal regression by
binary sub-tasks; CORAL, Cao et al., 2020, is its weight-shared variant). Its
class probabilities are differences of the cumulative ones after forcing them to
decrease, so every consumer sees (n, K) class probabilities whatever the head. Inference (``predict_proba``,
``predict``, ``features``) is batched, gradient-free, sorted by length so each
batch pads only to its own longest response.

Encoder and head share one dtype (``ScorerSpec.dtype``, float32 by default);
losses and probabilities are computed in float32 whatever it is.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from .backbone import Backbone, load_backbone, torch_dtype

THRESHOLD = 0.5


@dataclass(frozen=True)
class ScorerSpec:
    """What it takes to rebuild a scorer: backbone name, head size and kind, settings."""

    backbone: str
    kind: str            # "multilabel" | "multiclass"
    n_outputs: int       # L labels or K classes
    dropout: float = 0.1
    max_length: int = 100
    seed: int = 0        # only used to initialise a random ("tiny-random-bert") backbone
    dtype: str = "float32"  # of the encoder's and the head's weights (TrainSettings.dtype)
    pooling: str = "cls"    # what the head sees: final-layer [CLS] (the papers'), or "mean" over tokens
    head: str = "softmax"   # multi-class only: "softmax" (K logits) or "cumulative" (K-1 logits, ordinal)
    encoder_layers: int | None = None  # only the backbone's lower n layers (None: all)

    @property
    def n_logits(self) -> int:
        """Width of the head: L, K, or K-1 for a cumulative head."""
        return self.n_outputs - 1 if self.head == "cumulative" else self.n_outputs


def tokenize(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length``, unpadded."""
    return tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)["input_ids"]


def pad_ids(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) input ids and attention mask, padded to the longest sequence in the batch."""
    width = max(len(x) for x in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, x in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return ids, mask


def length_sorted_batches(lengths, batch_size: int) -> list[np.ndarray]:
    """Index batches with similar lengths together (longest first), for inference."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


POOLINGS = ("cls", "mean")
HEADS = ("softmax", "cumulative")


def cumulative_targets(classes: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(B, K-1) 0/1 targets [score > k for k in 0..K-2] of (B,) classes."""
    return (classes.long().unsqueeze(1) > torch.arange(n_classes - 1, device=classes.device)).float()


def cumulative_to_class_proba(p_above: torch.Tensor) -> torch.Tensor:
    """(B, K) class probabilities from (B, K-1) P(score > k): made non-increasing in k (a running
    minimum), then P(k) = P(> k-1) - P(> k) with P(> -1) = 1 and P(> K-1) = 0."""
    p = torch.cummin(p_above, dim=1).values
    ones, zeros = torch.ones_like(p[:, :1]), torch.zeros_like(p[:, :1])
    upper = torch.cat([ones, p], dim=1)
    return upper - torch.cat([p, zeros], dim=1)


class Scorer(nn.Module):
    def __init__(self, backbone: Backbone, spec: ScorerSpec):
        super().__init__()
        if spec.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {spec.pooling!r}")
        if spec.head not in HEADS or (spec.head == "cumulative" and spec.kind != "multiclass"):
            raise ValueError(f"head must be one of {HEADS} (cumulative: multi-class only), got {spec.head!r} "
                             f"for a {spec.kind} task")
        self.spec = spec
        self.tokenizer = backbone.tokenizer
        weights_dtype = torch_dtype(spec.dtype)
        self.encoder = backbone.model.to(weights_dtype)  # a no-op when the backbone was loaded in spec.dtype
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(backbone.hidden_size, spec.n_logits, dtype=weights_dtype)

    @property
    def n_layers(self) -> int:
        return int(self.encoder.config.num_hidden_layers)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # ---- forward passes -------------------------------------------------------------
    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, H) from final-layer states (B, T, H): [CLS], or the mean over real tokens (``spec.pooling``)."""
        if self.spec.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, H) pooled final-layer embedding ([CLS] unless ``spec.pooling`` is "mean")."""
        return self.pool(self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state,
                         attention_mask)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                hidden: torch.Tensor | None = None, from_layer: int = 0) -> torch.Tensor:
        """(B, n_logits) logits from token ids, or from cached states (B, T, H) entering ``from_layer``."""
        if hidden is not None:
            return self.forward_from(hidden, attention_mask, from_layer)
        return self.head(self.dropout(self.embed(input_ids, attention_mask)))

    def hidden_states_below(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int) -> torch.Tensor:
        """(B, T, H) output of the first ``layer`` encoder layers (0: the embeddings)."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.hidden_states[layer]

    def forward_from(self, hidden: torch.Tensor, attention_mask: torch.Tensor, layer: int) -> torch.Tensor:
        """(B, n_logits) logits from layer ``layer``'s input states (B, T, H): runs the layers above only.

        This is what partial fine-tuning trains: the frozen layers below ran once,
        their states were kept. BERT-style encoders (``encoder.encoder.layer``) only.
        """
        return self.head(self.dropout(self.embed_from(hidden, attention_mask, layer)))

    def embed_from(self, hidden: torch.Tensor, attention_mask: torch.Tensor, layer: int) -> torch.Tensor:
        """(B, H) pooled final-layer embedding from layer ``layer``'s input states (B, T, H)."""
        layers = _encoder_layers(self.encoder)
        mask = create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden,
                                         attention_mask=attention_mask)
        for block in layers[layer:]:
            hidden = block(hidden, mask)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return self.pool(hidden, attention_mask)

    # ---- loss and decisions ---------------------------------------------------------
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # half-precision logits (dtype or autocast): the loss is still taken in float32
        if self.spec.kind == "multilabel":
            return nn.functional.binary_cross_entropy_with_logits(logits, targets.float())
        if self.spec.head == "cumulative":
            return nn.functional.binary_cross_entropy_with_logits(
                logits, cumulative_targets(targets, self.spec.n_outputs))
        return nn.functional.cross_entropy(logits, targets.long())

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, L) label probabilities, or (B, K) class probabilities whatever the head."""
        logits = logits.float()
        if self.spec.kind == "multilabel":
            return torch.sigmoid(logits)
        if self.spec.head == "cumulative":
            return cumulative_to_class_proba(torch.sigmoid(logits))
        return torch.softmax(logits, dim=-1)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """(n, L) 0/1 at threshold 0.5, or (n,) argmax class."""
        if self.spec.kind == "multilabel":
            return (proba >= THRESHOLD).astype(np.int8)
        return proba.argmax(axis=1)

    # ---- inference on texts ---------------------------------------------------------
    @torch.no_grad()
    def _map(self, texts: list[str], fn, batch_size: int) -> np.ndarray:
        was_training = self.training
        self.eval()
        ids = tokenize(self.tokenizer, texts, self.spec.max_length)
        out = [None] * len(ids)
        for idx in length_sorted_batches([len(x) for x in ids], batch_size):
            input_ids, mask = pad_ids([ids[i] for i in idx], self.tokenizer.pad_token_id)
            values = fn(input_ids.to(self.device), mask.to(self.device)).float().cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = values[j]
        self.train(was_training)
        return np.stack(out) if out else np.zeros((0, self.spec.n_outputs), dtype=np.float32)

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, L) label probabilities, or (n, K) class probabilities."""
        return self._map(texts, lambda i, m: self.probabilities(self(i, m)), batch_size)

    def predict(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, L) 0/1 labels (threshold 0.5), or (n,) classes."""
        return self.decide(self.predict_proba(texts, batch_size))

    def features(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, H) pooled final-layer embeddings: [CLS], as the GW paper extracts them, unless the
        scorer pools by mean."""
        return self._map(texts, self.embed, batch_size)

    # ---- persistence ----------------------------------------------------------------
    def save(self, folder: str | Path, names: list[str] | None = None) -> None:
        """Write ``scorer.json`` and ``weights.safetensors`` (only the parameters in ``names``, if given)."""
        folder = Path(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()
                 if names is None or k in names}
        save_file(state, str(folder / "weights.safetensors"))
        (folder / "scorer.json").write_text(json.dumps(asdict(self.spec), indent=2))

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device | None = None) -> "Scorer":
        """Rebuild from the backbone (in the dtype it was trained in) and overwrite the saved parameters;
        every saved key must match.

        ``device``: where to put it; by default the GPU when there is one, else the CPU.
        """
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        folder = Path(folder)
        spec = ScorerSpec(**json.loads((folder / "scorer.json").read_text()))
        scorer = cls(load_backbone(spec.backbone, seed=spec.seed, dtype=spec.dtype,
                                   encoder_layers=spec.encoder_layers), spec)
        state = load_file(str(folder / "weights.safetensors"))
        result = scorer.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"saved weights do not fit the backbone {spec.backbone!r}: {result.unexpected_keys[:5]}")
        return scorer.to(device).eval()


def _encoder_layers(model) -> nn.ModuleList:
    enc = getattr(model, "encoder", None)
    layers = getattr(enc, "layer", None)
    if layers is None:
        raise TypeError(f"partial fine-tuning needs a BERT-style encoder (model.encoder.layer); "
                        f"{type(model).__name__} has none: set train.trainable_layers to null for full fine-tuning")
    return layers
