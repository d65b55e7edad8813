"""A word-level vocabulary for the LSTM student, learned from training responses.

The KD paper's student reads words, not WordPiece tokens: a Keras-style
tokenizer (lower-case, punctuation stripped, split on white space) whose
vocabulary keeps the most frequent training words. Index 0 is padding, index 1
stands for every word outside the vocabulary; with ``min_count`` > 1 the training
words seen fewer times are left out too, so index 1 occurs in training and
learns (:mod:`scoring_lab.kd.vocab_choice` chooses the threshold). The vocabulary's size is what a
parameter budget allows (:func:`vocabulary_size_for_budget`): the embedding
table is most of a 0.03M-parameter student.

Ties in frequency are broken alphabetically, so the same texts always give the
same vocabulary.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

PAD, OOV = "<pad>", "<oov>"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text``: runs of letters (any script, accents kept) and digits; an
    apostrophe inside a word is kept, a typographic one (’) read as '."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


@dataclass(frozen=True)
class Vocabulary:
    """tokens[i] is the word of index i; tokens[0] = PAD, tokens[1] = OOV.

    max_words: responses longer than this many words are cut (the student's input width).
    """

    tokens: tuple[str, ...]
    max_words: int = 64

    def __post_init__(self):
        if self.tokens[:2] != (PAD, OOV):
            raise ValueError(f"a vocabulary starts with {PAD!r}, {OOV!r}; got {self.tokens[:2]}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a vocabulary's tokens must be unique")
        if self.max_words < 1:
            raise ValueError(f"max_words must be >= 1, got {self.max_words}")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.tokens)}

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, T) int64 word indices, padded with 0 at the end to the longest response (at least 1
        column; a response with no word at all is one OOV), cut at ``max_words``."""
        index = self.index
        rows = [[index.get(w, 1) for w in words(t)][: self.max_words] or [1] for t in texts]
        width = max((len(r) for r in rows), default=1)
        out = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out

    def coverage(self, texts: list[str]) -> float:
        """Share of the words in ``texts`` that the vocabulary knows (1.0 for no words)."""
        index = self.index
        ws = [w for t in texts for w in words(t)]
        return float(np.mean([w in index for w in ws])) if ws else 1.0

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens), "max_words": self.max_words}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        return cls(tokens=tuple(d["tokens"]), max_words=int(d["max_words"]))


def fit_vocabulary(texts: list[str], size: int, max_words: int = 64, min_count: int = 1) -> Vocabulary:
    """The ``size - 2`` most frequent words of ``texts`` (seen at least ``min_count`` times), after
    PAD and OOV; fewer when the texts have fewer distinct words."""
    if size < 3:
        raise ValueError(f"a vocabulary needs room for PAD, OOV and a word: size >= 3, got {size}")
    counts = Counter(w for t in texts for w in words(t))
    ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return Vocabulary(tokens=(PAD, OOV, *ranked[: size - 2]), max_words=max_words)


def vocabulary_size_for_budget(budget: int, embedding_dim: int, fixed_parameters: int) -> int:
    """How many vocabulary rows fit: ``(budget - fixed_parameters) // embedding_dim`` (the embedding
    table is the only part that grows with the vocabulary)."""
    rows = (budget - fixed_parameters) // embedding_dim
    if rows < 3:
        raise ValueError(f"a parameter budget of {budget} leaves room for {rows} vocabulary rows "
                         f"after the {fixed_parameters} parameters of the rest of the student")
    return int(rows)
