"""The KD paper's ANN baseline: a small feed-forward network on TF-IDF features (scikit-learn).

The paper cites a "small ANN" without its architecture; this project takes the
plainest reading: TF-IDF of word 1-2 grams (the top ``max_features`` by
frequency in training, sublinear tf), one hidden ReLU layer, a softmax output,
Adam (scikit-learn's ``MLPClassifier``). It is trained an epoch at a time
(``partial_fit``) and early-stopped on the validation split's log-loss with the
best epoch's weights kept: the same protocol as the LSTM student, on the same
split (``MLPClassifier(early_stopping=True)`` would carve its own validation
share out of training instead).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier

from ..data.task import Split, Task

NAME = "ANN (TF-IDF + one hidden layer)"


@dataclass
class ANNBaseline:
    """A fitted ANN for one multi-class task. predict_proba: (n, K)."""

    vectorizer: TfidfVectorizer = field(repr=False)
    model: MLPClassifier = field(repr=False)
    n_classes: int
    info: dict

    def predict_proba(self, split_or_texts) -> np.ndarray:
        texts = split_or_texts.texts if isinstance(split_or_texts, Split) else list(split_or_texts)
        proba = self.model.predict_proba(self.vectorizer.transform(texts))
        out = np.zeros((len(texts), self.n_classes), dtype=np.float64)
        out[:, self.model.classes_] = proba          # classes absent from training keep probability 0
        return out

    def predict(self, split_or_texts) -> np.ndarray:
        return self.predict_proba(split_or_texts).argmax(axis=1)

    @property
    def n_parameters(self) -> int:
        return int(sum(w.size for w in self.model.coefs_) + sum(b.size for b in self.model.intercepts_))


def fit_ann(task: Task, hidden: int = 64, max_features: int = 5000, seed: int = 0, lr: float = 1e-3,
            batch_size: int = 32, max_epochs: int = 100, patience: int = 5) -> ANNBaseline:
    """Fit on ``task.train``, early-stopped on ``task.val`` log-loss (multi-class tasks)."""
    if task.kind != "multiclass":
        raise ValueError(f"the ANN baseline scores multi-class tasks; {task.name!r} is {task.kind}")
    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=max_features)
    x_train, x_val = vec.fit_transform(task.train.texts), vec.transform(task.val.texts)
    y_train, y_val = task.train.scores, task.val.scores
    classes = np.arange(task.n_classes)
    model = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", solver="adam", learning_rate_init=lr,
                          batch_size=batch_size, alpha=1e-4, random_state=seed)
    best, best_loss, best_epoch, bad, epochs = None, np.inf, 0, 0, 0
    for epoch in range(1, max_epochs + 1):
        model.partial_fit(x_train, y_train, classes=classes)
        epochs = epoch
        loss = log_loss(y_val, model.predict_proba(x_val), labels=classes)
        if loss < best_loss - 1e-6:
            best, best_loss, best_epoch, bad = copy.deepcopy(model), loss, epoch, 0
        else:
            bad += 1
            if bad >= patience:
                break
    info = {"best_epoch": best_epoch, "epochs_run": epochs, "val_log_loss": float(best_loss),
            "seconds": time.perf_counter() - t0, "n_features": len(vec.vocabulary_), "seed": int(seed)}
    return ANNBaseline(vec, best, task.n_classes, info)
