"""Linear-probe head initialisation (LP-FT): the head starts where a logistic regression on the
frozen encoder's pooled features ends.

Fine-tuning from a randomly initialised head moves the pretrained features while
the head is still wrong, and on a few hundred responses that distortion costs
accuracy (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features and
Underperform Out-of-Distribution"). Their remedy, LP-FT: fit a linear probe on
the frozen features first, then fine-tune everything from there. The probe is
scikit-learn's logistic regression (:func:`scoring_lab.models.baseline.fit_logistic`:
one binary model per label, or one multinomial model; ``C`` chosen by validation
log-loss), its coefficients copied into the scorer's ``nn.Linear`` head.
"""
from __future__ import annotations

import numpy as np
import torch

from .baseline import C_GRID, LogisticFit, fit_logistic
from .scorer import cumulative_targets

#: logit given to a label constant in training (or a class absent from it): sigmoid(8) = 0.9997
CONSTANT_LOGIT = 8.0


@torch.no_grad()
def pooled_features(embed, loader) -> tuple[np.ndarray, np.ndarray]:
    """(n, H) pooled features and (n, ...) targets of every batch of ``loader``, in its order.

    embed: batch -> (B, H) pooled embedding (the scorer in eval mode: no dropout)
    """
    feats, targets = [], []
    for batch in loader:
        feats.append(embed(batch).float().cpu().numpy())
        targets.append(batch["targets"].cpu().numpy())
    return np.concatenate(feats), np.concatenate(targets)


def head_weights(fit: LogisticFit, kind: str, n_outputs: int, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_outputs, H) weight and (n_outputs,) bias of a linear head that gives the probe's probabilities.

    Multi-label: one row per label (a label constant in training: weight 0, bias +-CONSTANT_LOGIT).
    Multi-class: the multinomial coefficients; a binary fit (two classes seen) splits its one row
    as +-w/2 between them; classes absent from training get bias -CONSTANT_LOGIT.
    """
    weight, bias = np.zeros((n_outputs, hidden)), np.zeros(n_outputs)
    if kind == "multilabel":
        for j, m in enumerate(fit.models):
            if isinstance(m, float):
                bias[j] = CONSTANT_LOGIT if m >= 0.5 else -CONSTANT_LOGIT
            else:
                weight[j], bias[j] = m.coef_[0], m.intercept_[0]
        return weight, bias
    m = fit.models[0]
    bias[:] = -CONSTANT_LOGIT
    if isinstance(m, float):  # one class seen in training
        bias[int(m)] = CONSTANT_LOGIT
        return weight, bias
    classes = m.classes_.astype(int)
    if len(classes) == 2:
        weight[classes[1]], bias[classes[1]] = m.coef_[0] / 2, m.intercept_[0] / 2
        weight[classes[0]], bias[classes[0]] = -m.coef_[0] / 2, -m.intercept_[0] / 2
    else:
        weight[classes], bias[classes] = m.coef_, m.intercept_
    return weight, bias


def init_head_from_probe(scorer, embed, train_loader, val_loader=None, seed: int = 0, C_grid=C_GRID) -> dict:
    """Fit the probe on the frozen features of ``train_loader`` (C chosen from ``C_grid`` on ``val_loader``;
    without one, a one-value grid gives C, as a refit does) and copy it into ``scorer.head``. Loaders:
    unshuffled batches with a ``targets`` entry. Returns the probe's C and its validation log-loss per C."""
    was_training = scorer.training
    scorer.eval()
    x_train, y_train = pooled_features(embed, train_loader)
    x_val, y_val = pooled_features(embed, val_loader) if val_loader is not None else (None, None)
    scorer.train(was_training)
    kind, n_out = scorer.spec.kind, scorer.spec.n_logits
    if scorer.spec.head == "cumulative":  # one binary probe per "score > k"
        def above(y):
            return cumulative_targets(torch.as_tensor(y), n_out + 1).numpy()
        kind, y_train = "multilabel", above(y_train)
        y_val = None if y_val is None else above(y_val)
    fit = fit_logistic(x_train, y_train, x_val, y_val, kind, n_out, C_grid=tuple(C_grid), seed=seed)
    weight, bias = head_weights(fit, kind, n_out, x_train.shape[1])
    with torch.no_grad():
        scorer.head.weight.copy_(torch.as_tensor(weight, dtype=scorer.head.weight.dtype))
        scorer.head.bias.copy_(torch.as_tensor(bias, dtype=scorer.head.bias.dtype))
    return {"probe_C": fit.C, "probe_val_log_loss": fit.val_log_loss}
