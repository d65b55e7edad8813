"""UniMoE's parts: token-wise experts with a task-aware gate, the load-balancing penalty, the
distillation term and the small task heads (the UniMoE paper's section "Method").

Shapes: B responses, T tokens, d hidden, M experts, L_t labels of task t.

* :class:`MoEBlock`: M experts, each a two-layer feed-forward network with a non-linearity and
  dropout, applied token-wise to the encoder's states H (B, T, d); a gate on
  [pi(H); e_t] (a pooled summary and a learned task embedding) gives softmax weights alpha (B, M),
  shared across a response's tokens; the output is sum_j alpha_j E_j(H) (B, T, d). With
  ``on="pooled"`` the experts act on the pooled vector instead (B, d): the placement of the
  paper's public code, offered for comparison (its code's block, two MoE layers with residual
  connections, LayerNorm and a two-layer MLP gate over BERT's [CLS] pooler, is not built here).
* :func:`load_balancing_loss`: L_LB = (1/M) sum_j (mean_b alpha_bj - 1/M)^2.
* :func:`distillation_loss`: L_KD = tau^2 BCE(sigmoid(z / tau), sigmoid(z_teacher / tau)) per rubric
  dimension; for a score, tau^2 KL(softmax(z_teacher / tau) || softmax(z / tau)) (Hinton et al.'s form).
* :class:`TaskHeads`: per task, linear -> ReLU -> dropout -> linear to its L_t logits (one per rubric
  dimension, or one per class of a score).

The paper does not say how the heads read the token-wise H~; with [CLS] pooling, token-wise
experts would see one token only and the text's block would act on one pooled vector,
so pi and the heads' pooling here are the mean over a response's real tokens. An expert's hidden
width defaults to d: the paper's "two MoE modules (9M)" of 3-5 experts on BERT-base (d = 768)
imply about 2 d h = 9M / (2 M), h near d for M = 4.
"""
from __future__ import annotations

import torch
from torch import nn

TOKENS, POOLED = "tokens", "pooled"


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, d) mean of (B, T, d) states over each response's real tokens (``mask`` (B, T) 0/1)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)


class ExpertBank(nn.Module):
    """M two-layer feed-forward experts d -> hidden -> d (GELU and dropout between), computed together.

    Expert j is ``x @ w1[j] + b1[j] -> GELU -> dropout -> @ w2[j] + b2[j]``; stacking the M experts'
    weights turns M small matmuls into one batched one (on this project's CPU, the pooled block's step
    took a third of the time it took with M separate ``nn.Sequential`` experts). Initialised as
    ``nn.Linear`` would each (uniform within 1/sqrt(fan_in)). ``bank[j](x)`` is expert j alone."""

    def __init__(self, d: int, hidden: int, n_experts: int, dropout: float):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(n_experts, d, hidden))
        self.b1 = nn.Parameter(torch.empty(n_experts, hidden))
        self.w2 = nn.Parameter(torch.empty(n_experts, hidden, d))
        self.b2 = nn.Parameter(torch.empty(n_experts, d))
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():
            for w, b, fan_in in ((self.w1, self.b1, d), (self.w2, self.b2, hidden)):
                bound = 1.0 / fan_in ** 0.5
                w.uniform_(-bound, bound)
                b.uniform_(-bound, bound)

    def __len__(self) -> int:
        return int(self.w1.shape[0])

    def __getitem__(self, j: int):
        return lambda x: self.expert(j, x)

    def expert(self, j: int, x: torch.Tensor) -> torch.Tensor:
        """Expert j on x (..., d) -> (..., d)."""
        h = self.dropout(nn.functional.gelu(x @ self.w1[j] + self.b1[j]))
        return h @ self.w2[j] + self.b2[j]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert on x: (B, d) -> (B, M, d), or (B, T, d) -> (B, M, T, d)."""
        if x.dim() == 2:
            h = torch.einsum("bd,mdh->bmh", x, self.w1) + self.b1
            h = self.dropout(nn.functional.gelu(h))
            return torch.einsum("bmh,mhd->bmd", h, self.w2) + self.b2
        h = torch.einsum("btd,mdh->bmth", x, self.w1) + self.b1[:, None, :]
        h = self.dropout(nn.functional.gelu(h))
        return torch.einsum("bmth,mhd->bmtd", h, self.w2) + self.b2[:, None, :]


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
        self.experts = ExpertBank(d, expert_hidden or d, n_experts, dropout)
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
        outs = self.experts(x)                                           # (B, M, T, d) or (B, M, d)
        shape = (alpha.shape[0], alpha.shape[1]) + (1,) * (outs.dim() - 2)
        return (alpha.view(shape) * outs).sum(dim=1), alpha


def load_balancing_loss(alpha: torch.Tensor) -> torch.Tensor:
    """L_LB = (1/M) sum_j (mean over the batch of alpha_j - 1/M)^2, from gate weights (B, M)."""
    m = alpha.shape[1]
    return ((alpha.mean(dim=0) - 1.0 / m) ** 2).mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float = 1.0,
                      kind: str = "multilabel") -> torch.Tensor:
    """The distillation term from (B, L) student and teacher logits: for rubric dimensions (``multilabel``)
    tau^2 * BCE(sigmoid(z / tau), sigmoid(z_teacher / tau)), the mean over responses and labels; for a score
    (``multiclass``, L classes) tau^2 * KL(softmax(z_teacher / tau) || softmax(z / tau)), the mean over
    responses. Both are 0 in gradient where the student's logits equal the teacher's."""
    if tau <= 0:
        raise ValueError(f"the temperature must be positive, got {tau}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    if kind == "multiclass":
        log_p = nn.functional.log_softmax(student_logits.float() / tau, dim=-1)
        log_q = nn.functional.log_softmax(teacher_logits.float() / tau, dim=-1)
        return tau ** 2 * nn.functional.kl_div(log_p, log_q, reduction="batchmean", log_target=True)
    if kind != "multilabel":
        raise ValueError(f"a task is multilabel or multiclass, not {kind!r}")
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
