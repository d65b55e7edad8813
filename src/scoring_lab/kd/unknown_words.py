"""Accuracy on the test responses that hold a word the student does not know, and on the rest.

The student reads words through its vocabulary; a word outside it is ``<oov>``. The transformers read
WordPiece pieces and have no unknown words in this sense, but the same responses are the hard ones
for them too where the unknown words are held-out paraphrases and typos. Splitting each set's test
responses by whether they hold a word that no training response of the set has (unseen wording: the
same split for every model and every vocabulary threshold) and scoring every model on each part
shows where the student's gap to its teacher lies, and what the vocabulary threshold changed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import distill as kd_module
from . import student_predictions
from .plan import KD_STUDENT, SMALL, STUDENT, TEACHER
from .vocab import Vocabulary, fit_vocabulary, words

if TYPE_CHECKING:
    from .students import StudentsAndANN

MODELS = (TEACHER, SMALL, KD_STUDENT, STUDENT)
COLUMNS = ["set", "model", "seeds", "n_unknown", "accuracy_unknown", "n_known", "accuracy_known", "difference"]


def every_training_word(min_count: int) -> str:
    """The label of the lambda = 0 student whose vocabulary has threshold ``min_count`` (the one before the choice)."""
    return f"{STUDENT}, min_count = {min_count}"


def training_words(texts: list[str], max_words: int) -> Vocabulary:
    """Every word of ``texts`` (no count threshold, no size cap): what "seen in training" means here."""
    return fit_vocabulary(texts, size=len({w for t in texts for w in words(t)}) + 2, max_words=max_words)


def has_unknown_word(vocabulary: Vocabulary, texts: list[str]) -> np.ndarray:
    """(n,) bool: whether each text holds a word (among the first ``max_words`` the student reads) that
    ``vocabulary`` lacks. A text with no word at all holds none."""
    index = vocabulary.index
    return np.array([any(w not in index for w in words(t)[: vocabulary.max_words]) for t in texts], dtype=bool)


def accuracy_by_unknown_words(sets: dict, predictions: dict, vocabularies: dict[str, Vocabulary],
                              models=MODELS) -> pd.DataFrame:
    """Per set and model (of ``models``, in that order, where ``predictions`` has it): the test responses
    with a word outside the set's student vocabulary (``n_unknown``) and without (``n_known``), the
    accuracy on each (pooled over seeds: the mean of the seeds' accuracies; NaN on an empty part) and
    ``difference`` = known - unknown.

    ``predictions``: {(set, model, seed): (n_test,) classes}; ``vocabularies``: {set: the vocabulary}."""
    rows = []
    for name, task in sets.items():
        unknown = has_unknown_word(vocabularies[name], list(task.test.texts))
        y = np.asarray(task.test.scores)
        for model in models:
            preds = [p for (s, m, _), p in predictions.items() if s == name and m == model]
            if not preds:
                continue
            right = np.stack([np.asarray(p) == y for p in preds])                  # (seeds, n_test)
            acc = {part: float(right[:, mask].mean()) if mask.any() else float("nan")
                   for part, mask in (("unknown", unknown), ("known", ~unknown))}
            rows.append({"set": name, "model": model, "seeds": len(preds), "n_unknown": int(unknown.sum()),
                         "accuracy_unknown": acc["unknown"], "n_known": int((~unknown).sum()),
                         "accuracy_known": acc["known"], "difference": acc["known"] - acc["unknown"]})
    return pd.DataFrame(rows, columns=COLUMNS)


def unknown_word_table(models: "StudentsAndANN", predictions: dict) -> pd.DataFrame:
    """:func:`accuracy_by_unknown_words` of the chapter's models (``predictions``: every model's test
    classes), a word unknown when no training response of the set has it (:func:`training_words`), with
    the lambda = 0 students that keep every training word (``min_count = 1``, trained for the choice)
    beside them where another threshold was chosen."""
    plan = models.plan
    vocabularies, before = {}, {}
    for name, task in plan.sets.items():
        vocabularies[name] = training_words(task.train.texts, plan.kd.max_words)
        if models.min_count(name) != 1 and 1 in plan.kd.vocab_min_counts:
            for s in plan.seeds:
                request = kd_module.StudentRequest(s, 0.0, None, 1)
                before[(name, every_training_word(1), s)] = student_predictions.proba_on_test(
                    models, name, request, planned=False).argmax(axis=1)
    return accuracy_by_unknown_words(plan.sets, {**predictions, **before}, vocabularies,
                                     (*MODELS, every_training_word(1)))


def pooled(table: pd.DataFrame, model: str) -> dict[str, float]:
    """``model``'s accuracy on the responses with and without unknown words over every set of ``table``
    (weighted by the responses of each part), and the share of responses with unknown words."""
    rows = table[table["model"] == model]
    if rows.empty:
        return {}
    n_u, n_k = rows["n_unknown"].sum(), rows["n_known"].sum()
    weighted = (lambda col, n: float((rows[col].fillna(0) * rows[n]).sum() / rows[n].sum())
                if rows[n].sum() else float("nan"))
    return {"unknown": weighted("accuracy_unknown", "n_unknown"), "known": weighted("accuracy_known", "n_known"),
            "share_unknown": float(n_u / (n_u + n_k)) if n_u + n_k else float("nan")}
