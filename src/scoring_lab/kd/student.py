"""The KD paper's student: word embedding, bidirectional LSTM, global max-pool, two dense layers.

Section 3.3 of the paper: an embedding of output dimension 32, a bidirectional
LSTM of 16 units, GlobalMaxPooling1D, a dense layer of 16 with ReLU, a softmax
output; dropout for regularisation. With a vocabulary of about 720 words the
whole model has about 0.03M parameters (:func:`fixed_parameters` counts all but
the embedding table, :func:`scoring_lab.kd.vocab.vocabulary_size_for_budget` sizes
the vocabulary from the rest).

Padding never changes a prediction: the backward direction reads each response
reversed within its own length (a gather, not packed sequences, so the model
exports to ONNX), and the max-pool skips padded positions. A response scores
the same alone (batch 1) as inside a padded batch of 32; a test pins it.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .vocab import Vocabulary

NEG = -1e4   # what padded positions hold before the max-pool (below any tanh output)


@contextmanager
def torch_threads(n: int = 1):
    """PyTorch's intra-op threads set to ``n`` inside the block, restored after. The student's matrices
    are tiny: one thread is fastest, and several threads on a busy machine spin-wait each other
    (measured here: up to 100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class StudentConfig:
    """Shape of a student. vocab_size includes PAD (0) and OOV (1)."""

    vocab_size: int
    n_classes: int
    embedding_dim: int = 32
    lstm_units: int = 16          # per direction
    dense_units: int = 16
    dropout: float = 0.2

    def to_dict(self) -> dict:
        return asdict(self)


def fixed_parameters(n_classes: int, embedding_dim: int = 32, lstm_units: int = 16, dense_units: int = 16) -> int:
    """Parameters of everything but the embedding table (PyTorch's LSTM keeps two bias vectors per gate)."""
    lstm = 2 * (4 * lstm_units * (embedding_dim + lstm_units) + 2 * 4 * lstm_units)
    dense = 2 * lstm_units * dense_units + dense_units
    out = dense_units * n_classes + n_classes
    return lstm + dense + out


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, T, D): each row's first ``lengths[b]`` steps reversed, the padding left in place."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)            # (1, T)
    lengths = lengths.unsqueeze(1)                                              # (B, 1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)            # (B, T)
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class LSTMStudent(nn.Module):
    """(B, T) int64 word indices (0 = padding) -> (B, K) logits."""

    def __init__(self, config: StudentConfig):
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=0)
        self.forward_lstm = nn.LSTM(c.embedding_dim, c.lstm_units, batch_first=True)
        self.backward_lstm = nn.LSTM(c.embedding_dim, c.lstm_units, batch_first=True)
        self.dropout = nn.Dropout(c.dropout)
        self.dense = nn.Linear(2 * c.lstm_units, c.dense_units)
        self.out = nn.Linear(c.dense_units, c.n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        valid = ids != 0                                                         # (B, T)
        lengths = valid.sum(dim=1).clamp(min=1)
        x = self.dropout(self.embedding(ids))                                    # (B, T, E)
        fwd, _ = self.forward_lstm(x)                                            # (B, T, U)
        bwd, _ = self.backward_lstm(reverse_within_length(x, lengths))
        h = torch.cat([fwd, reverse_within_length(bwd, lengths)], dim=-1)        # (B, T, 2U)
        h = h.masked_fill(~valid.unsqueeze(-1), NEG).max(dim=1).values          # (B, 2U) global max-pool
        h = self.dropout(torch.relu(self.dense(self.dropout(h))))
        return self.out(h)

    @torch.no_grad()
    def predict_proba(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, K) class probabilities (softmax), in eval mode."""
        was = self.training
        self.eval()
        try:
            return torch.softmax(self(ids), dim=-1)
        finally:
            self.train(was)


def n_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# ----------------------------------------------------------------------------- the deployable student
STUDENT_FORMAT = "scoring-lab-lstm-student/1"
CONFIG_FILE, WEIGHTS_FILE = "student.json", "weights.safetensors"


class Student:
    """A trained student with what it needs to score raw text: its vocabulary and class names.

    Saved as one folder of two files, nothing pickled: ``student.json`` (format, config,
    vocabulary, class names, free-form ``about``) and ``weights.safetensors``. Wrapping a model
    puts it in eval mode (a Student is for scoring, training happens before).

    The vocabulary's count threshold (``min_count``, chosen on validation since issue 26) changes
    which words a student's token list holds, not how text is encoded: a saved student carries its
    own token list, and any word outside it is ``<oov>`` (index 1) under every threshold. So the
    format stays ``scoring-lab-lstm-student/1``, and a student saved before the threshold existed
    (its ``about`` has no ``min_count``; it kept every training word) scores exactly as it did.
    """

    def __init__(self, model: LSTMStudent, vocabulary: Vocabulary, class_names: list[str], about: dict | None = None):
        if len(class_names) != model.config.n_classes:
            raise ValueError(f"{len(class_names)} class names for a student with {model.config.n_classes} classes")
        if len(vocabulary) != model.config.vocab_size:
            raise ValueError(f"a vocabulary of {len(vocabulary)} for a student built for {model.config.vocab_size}")
        self.model, self.vocabulary, self.class_names = model.eval(), vocabulary, list(class_names)
        self.about = dict(about or {})

    @property
    def n_parameters(self) -> int:
        return n_parameters(self.model)

    def encode(self, texts: list[str]) -> torch.Tensor:
        """(n, T) int64 word indices (see :meth:`scoring_lab.kd.vocab.Vocabulary.encode`)."""
        return torch.from_numpy(self.vocabulary.encode(list(texts)))

    def predict_proba(self, texts: list[str], batch_size: int = 256):
        """(n, K) float32 class probabilities, in the order of ``texts``."""
        with torch_threads(1):
            out = [self.model.predict_proba(self.encode(texts[i: i + batch_size])).numpy()
                   for i in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.model.config.n_classes), dtype=np.float32)

    def predict(self, texts: list[str], batch_size: int = 256):
        """(n,) class index of the highest probability."""
        return self.predict_proba(texts, batch_size).argmax(axis=1)

    def save(self, folder) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        (folder / CONFIG_FILE).write_text(json.dumps({
            "format": STUDENT_FORMAT, "config": self.model.config.to_dict(),
            "vocabulary": self.vocabulary.to_dict(), "class_names": self.class_names, "about": self.about,
        }, indent=1) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder) -> "Student":
        """The student saved in ``folder``; a folder that is not one is an error saying what is wrong."""
        folder = Path(folder)
        config_path = folder / CONFIG_FILE
        if not config_path.is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{folder} is not a saved student: it needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        try:
            meta = json.loads(config_path.read_text(encoding="utf-8"))
            if meta.get("format") != STUDENT_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {STUDENT_FORMAT!r}")
            model = LSTMStudent(StudentConfig(**meta["config"]))
            model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
            return cls(model, Vocabulary.from_dict(meta["vocabulary"]), meta["class_names"], meta.get("about"))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"{config_path} is not a readable saved student: {e}") from e
