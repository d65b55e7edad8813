"""Many LSTM students trained side by side, as one batched computation.

A KD study trains the same small student dozens of times: over seeds, over lambda
values, on in-sample and out-of-fold teacher targets. On a CPU such a network's time
goes to per-step overhead, not arithmetic, so M students trained one after the other
cost M times as much as one, and M trained side by side cost little more than one.

:class:`StudentStack` holds M complete students (each initialised exactly as a solo
:class:`~scoring_lab.kd.student.LSTMStudent` built under its own seed) with a leading
member axis on every parameter. The LSTM recurrence of all 2M directions runs as one
batched matrix product per time step (``torch.bmm``); ``nn.LSTM`` cannot batch over
weights and ``torch.func.vmap`` has no batching rule for ``aten::lstm``, hence the
hand-written recurrence, whose output equals ``nn.LSTM``'s (a test pins it).

Members never share a parameter or a gradient (the loss is a sum of the members'
losses and Adam works per element), and each draws its dropout masks from its own
seeded generator, so a member trains exactly as it would alone: same batch order,
same masks, same early stopping, whatever else is in the stack.
"""
from __future__ import annotations

import torch
from torch import nn

from .student import NEG, LSTMStudent, StudentConfig, reverse_within_length


def lstm_recurrence(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
                    b_hh: torch.Tensor, widths: list[int] | None = None) -> torch.Tensor:
    """G independent one-layer LSTMs (PyTorch's gate order i, f, g, o) over the same time steps.

    x (G, B, T, E), w_ih (G, 4U, E), w_hh (G, 4U, U), b_ih and b_hh (G, 4U) -> (G, B, T, U) hidden states.
    ``widths`` (G,): LSTM g's input projection is computed over its own first ``widths[g]`` steps only
    (the steps after are padding, their states unused), so its arithmetic, and with it every bit of its
    result and gradients, does not depend on how wide the other LSTMs' inputs are: a matrix product's
    blocking follows its row count, and B x T rows computed together round differently from B x w."""
    G, B, T, _ = x.shape
    U = w_hh.shape[2]
    bias = b_ih + b_hh
    if widths is None:
        pre = torch.einsum("gbte,gue->gbtu", x, w_ih) + bias[:, None, None, :]          # (G, B, T, 4U)
    else:   # the bias too: its gradient sums over the steps
        pre = torch.stack([nn.functional.pad(x[g, :, :w] @ w_ih[g].T + bias[g], (0, 0, 0, T - w))
                           for g, w in enumerate(widths)])
    w_hh_t = w_hh.transpose(1, 2)                                                        # (G, U, 4U)
    h = x.new_zeros((G, B, U))
    c = x.new_zeros((G, B, U))
    out = []
    for pre_t in pre.unbind(2):   # unbind, not pre[:, :, t]: its backward is one stack, not T zero-filled copies
        i, f, g, o = (pre_t + torch.bmm(h, w_hh_t)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out, dim=2)


class StudentStack(nn.Module):
    """M students of one shape: (M, B, T) word indices (member m reads row [m]) -> (M, B, K) logits.

    ``generators`` (one per member) draw each member's dropout masks."""

    def __init__(self, students: list[LSTMStudent], generators: list[torch.Generator] | None = None):
        super().__init__()
        if not students:
            raise ValueError("a StudentStack needs at least one student")
        configs = {s.config for s in students}
        if len(configs) != 1:
            raise ValueError(f"the students of a stack must share one shape, got {configs}")
        self.config: StudentConfig = students[0].config
        self.n_members = len(students)
        self.generators = generators

        def stack(get):
            return nn.Parameter(torch.stack([get(s).detach().clone() for s in students]))

        def both(get):
            return nn.Parameter(torch.stack([torch.stack([get(s.forward_lstm).detach(), get(s.backward_lstm).detach()])
                                             for s in students]).clone())

        self.embedding = stack(lambda s: s.embedding.weight)          # (M, V, E)
        self.w_ih = both(lambda lstm: lstm.weight_ih_l0)               # (M, 2, 4U, E)
        self.w_hh = both(lambda lstm: lstm.weight_hh_l0)               # (M, 2, 4U, U)
        self.b_ih = both(lambda lstm: lstm.bias_ih_l0)                 # (M, 2, 4U)
        self.b_hh = both(lambda lstm: lstm.bias_hh_l0)                 # (M, 2, 4U)
        self.dense_w = stack(lambda s: s.dense.weight)                # (M, D, 2U)
        self.dense_b = stack(lambda s: s.dense.bias)                  # (M, D)
        self.out_w = stack(lambda s: s.out.weight)                    # (M, K, D)
        self.out_b = stack(lambda s: s.out.bias)                      # (M, K)

    def _dropout(self, x: torch.Tensor, widths: list[int] | None = None) -> torch.Tensor:
        """Inverted dropout on (M, B, ...), each member's mask from its own generator.

        With ``widths`` (x is (M, B, T, E)), member m's mask is drawn for its own first ``widths[m]``
        steps only (its batch's longest response), so its masks do not depend on how long the other
        members' responses are; the steps after hold padding and are kept as they are."""
        p = self.config.dropout
        if not self.training or p == 0:
            return x
        keep = 1.0 - p
        if self.generators is None:
            return x * (torch.rand(x.shape) < keep) / keep
        masks = []
        for m, g in enumerate(self.generators):
            if widths is None:
                masks.append(torch.rand(x.shape[1:], generator=g) < keep)
            else:
                B, T, E = x.shape[1:]
                own = torch.rand((B, widths[m], E), generator=g) < keep
                masks.append(torch.cat([own, own.new_ones((B, T - widths[m], E))], dim=1))
        return x * torch.stack(masks) / keep

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        M, B, T = ids.shape
        U = self.config.lstm_units
        valid = ids != 0                                                             # (M, B, T)
        lengths = valid.sum(dim=2).clamp(min=1)
        widths = valid.any(dim=1).sum(dim=1).clamp(min=1).tolist()                   # each member's own width
        # each member's lookup over its own width: an indexing backward's accumulation order follows
        # how many indices there are, so a shared width would change a member's embedding gradient's bits
        x = torch.stack([nn.functional.pad(self.embedding[m][ids[m, :, :w]], (0, 0, 0, T - w))
                         for m, w in enumerate(widths)])
        x = self._dropout(x, widths)                                                 # (M, B, T, E)
        backward = reverse_within_length(x.flatten(0, 1), lengths.flatten()).view_as(x)
        streams = torch.stack([x, backward], dim=1).flatten(0, 1)                    # (2M, B, T, E)
        h = lstm_recurrence(streams, self.w_ih.flatten(0, 1), self.w_hh.flatten(0, 1),
                            self.b_ih.flatten(0, 1), self.b_hh.flatten(0, 1),
                            [w for w in widths for _ in range(2)])                   # (2M, B, T, U)
        # the max-pool ignores time order, so the backward stream need not be reversed back
        h = h.view(M, 2, B, T, U).permute(0, 2, 3, 1, 4).reshape(M, B, T, 2 * U)
        h = h.masked_fill(~valid.unsqueeze(-1), NEG).max(dim=2).values               # (M, B, 2U)
        h = torch.einsum("mbi,moi->mbo", self._dropout(h), self.dense_w) + self.dense_b[:, None]
        h = self._dropout(torch.relu(h))
        return torch.einsum("mbi,moi->mbo", h, self.out_w) + self.out_b[:, None]      # (M, B, K)

    def select(self, keep: list[int]) -> "StudentStack":
        """A stack of members ``keep`` only (copies of their parameters, their dropout generators)."""
        index = torch.tensor(keep)
        out = StudentStack.__new__(StudentStack)
        nn.Module.__init__(out)
        out.config, out.n_members = self.config, len(keep)
        out.generators = None if self.generators is None else [self.generators[j] for j in keep]
        for name, p in self.named_parameters():
            setattr(out, name, nn.Parameter(p.detach()[index].clone()))
        return out.train(self.training)

    def member_state(self, m: int) -> dict[str, torch.Tensor]:
        """Member ``m``'s parameters as an :class:`LSTMStudent` state dict."""
        state = {"embedding.weight": self.embedding[m], "dense.weight": self.dense_w[m], "dense.bias": self.dense_b[m],
                 "out.weight": self.out_w[m], "out.bias": self.out_b[m]}
        for d, direction in enumerate(("forward_lstm", "backward_lstm")):
            for name, p in (("weight_ih_l0", self.w_ih), ("weight_hh_l0", self.w_hh), ("bias_ih_l0", self.b_ih),
                            ("bias_hh_l0", self.b_hh)):
                state[f"{direction}.{name}"] = p[m, d]
        return {k: v.detach().clone() for k, v in state.items()}

    def member(self, m: int, state: dict[str, torch.Tensor] | None = None) -> LSTMStudent:
        """Member ``m`` (or the given state of it) as a standalone, eval-mode :class:`LSTMStudent`."""
        model = LSTMStudent(self.config)
        model.load_state_dict(state if state is not None else self.member_state(m))
        return model.eval()
