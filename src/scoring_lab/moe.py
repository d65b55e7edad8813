"""UniMoE's parts: token-wise experts with a task-aware gate, the load-balancing penalty, the
distillation term and the small task heads (the UniMoE paper's section "Method").

Shapes: B responses, T tokens, d hidden, M experts, L_t labels of task t.

* :class:`MoEBlock`: M experts, each a two-layer feed-forward network with a non-linearity and
  dropout, applied token-wise to the encoder's states H (B, T, d); a gate on
  [pi(H); e_t] (a pooled summary and a learned task embedding) gives softmax weights alpha (B, M),
  shared across a response's tokens; the output is sum_j alpha_j E_j(H) (B, T, d). With
  ``on="pooled"`` the experts act on the pooled vector instead (B, d): the paper's public
  reference code, offered for comparison.
* :func:`load_balancing_loss`: L_LB = (1/M) sum_j (mean_b alpha_bj - 1/M)^2.
* :func:`distillation_loss`: L_KD = tau^2 BCE(sigmoid(z / tau), sigmoid(z_teacher / tau)).
* :class:`TaskHeads`: per task, linear -> ReLU -> dropout -> linear to its L_t logits.

The paper does not say how the heads read the token-wise H~; with [CLS] pooling, token-wise
experts would see one token only and the text's block would be the reference code's pooled one,
so pi and the heads' pooling here are the mean over a response's real tokens.
"""
from __future__ import annotations

import torch
from torch import nn

TOKENS, POOLED = "tokens", "pooled"


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, d) mean of (B, T, d) states over each response's real tokens (``mask`` (B, T) 0/1)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)


class Expert(nn.Module):
    """A two-layer feed-forward network: d -> hidden -> d, GELU and dropout between."""

    def __init__(self, d: int, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MoEBlock(nn.Module):
    """M experts mixed by a task-aware softmax gate (dense routing)."""

    def __init__(self, d: int, n_experts: int, n_tasks: int, expert_hidden: int | None = None, task_dim: int = 32,
                 dropout: float = 0.1, on: str = TOKENS):
        super().__init__()
        if n_experts < 1 or n_tasks < 1:
            raise ValueError(f"a MoE block needs at least one expert and one task, got {n_experts} and {n_tasks}")
        if on not in (TOKENS, POOLED):
            raise ValueError(f"experts act on {TOKENS!r} or {POOLED!r}, got {on!r}")
        self.on = on
        self.experts = nn.ModuleList(Expert(d, expert_hidden or 2 * d, dropout) for _ in range(n_experts))
        self.task_embedding = nn.Embedding(n_tasks, task_dim)
        self.gate = nn.Linear(d + task_dim, n_experts)

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def weights(self, hidden: torch.Tensor, mask: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """(B, M) gate weights alpha from states (B, T, d) and task ids (B,)."""
        m = torch.cat([mean_pool(hidden, mask), self.task_embedding(task_ids)], dim=-1)
        return torch.softmax(self.gate(m), dim=-1)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, task_ids: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the mixture: (B, T, d) on tokens, (B, d) on the pooled vector; alpha (B, M))."""
        alpha = self.weights(hidden, mask, task_ids)
        x = hidden if self.on == TOKENS else mean_pool(hidden, mask)
        outs = torch.stack([e(x) for e in self.experts], dim=1)          # (B, M, T, d) or (B, M, d)
        shape = (alpha.shape[0], alpha.shape[1]) + (1,) * (outs.dim() - 2)
        return (alpha.view(shape) * outs).sum(dim=1), alpha


def load_balancing_loss(alpha: torch.Tensor) -> torch.Tensor:
    """L_LB = (1/M) sum_j (mean over the batch of alpha_j - 1/M)^2, from gate weights (B, M)."""
    m = alpha.shape[1]
    return ((alpha.mean(dim=0) - 1.0 / m) ** 2).mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """tau^2 * BCE(sigmoid(z / tau), sigmoid(z_teacher / tau)), the mean over responses and labels ((B, L) each)."""
    if tau <= 0:
        raise ValueError(f"the temperature must be positive, got {tau}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    target = torch.sigmoid(teacher_logits.float() / tau)
    return tau ** 2 * nn.functional.binary_cross_entropy_with_logits(student_logits.float() / tau, target)


class TaskHeads(nn.Module):
    """One small head per task: linear (d -> hidden) -> ReLU -> dropout -> linear (hidden -> L_t)."""

    def __init__(self, d: int, labels_per_task: dict[str, int], hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.names = list(labels_per_task)
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout),
                                                 nn.Linear(hidden, n)) for n in labels_per_task.values())

    def add(self, name: str, n_labels: int) -> None:
        """A new task's head (the paper's adaptation to a new task)."""
        if name in self.names:
            raise ValueError(f"task {name!r} has a head already")
        first = self.heads[0]
        self.heads.append(nn.Sequential(nn.Linear(first[0].in_features, first[0].out_features), nn.ReLU(),
                                        nn.Dropout(first[2].p), nn.Linear(first[0].out_features, n_labels)))
        self.names.append(name)

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        """(B, L_t) logits of task ``task`` from pooled (B, d) representations."""
        try:
            return self.heads[self.names.index(task)](x)
        except ValueError:
            raise KeyError(f"no head for task {task!r}; heads: {self.names}") from None


def teacher_logits_for(ids, table: dict[str, torch.Tensor] | None, task: str) -> torch.Tensor:
    """(B, L) teacher logits of responses ``ids`` of ``task``, joined by response id from ``table``
    ({id: (L,) logits}); a response without one is an error naming it (never a silent zero)."""
    if table is None:
        raise KeyError(f"task {task!r}: no teacher logits were given")
    missing = [str(i) for i in ids if str(i) not in table]
    if missing:
        raise KeyError(f"task {task!r}: {len(missing)} response(s) have no teacher logits, e.g. ids {missing[:5]}")
    return torch.stack([table[str(i)] for i in ids])
