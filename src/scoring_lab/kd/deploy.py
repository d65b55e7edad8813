"""The trained student as a school laptop or tablet would run it.

- :func:`score_csv` scores a spreadsheet of responses (CSV or TSV) with a saved student and
  writes it back with the predicted score and one probability column per class; every input
  row and column is kept, in order, and bad input is a DataError naming file, row and column.
- :func:`export_onnx` writes the student as one ONNX file (input ``ids``: (B, T) int64 word
  indices, 0 = padding; output ``proba``: (B, K) softmax probabilities), which onnxruntime
  runs without PyTorch (:func:`onnx_session`, :func:`onnx_predict_proba`);
  :func:`onnx_max_difference` checks it against PyTorch.
- Latency is timed with :func:`scoring_lab.models.latency.latency_per_response`, the same way for the
  student, its ONNX file and the transformer scorers.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..data.tabular import is_empty_text, read_table
from .student import LSTMStudent, Student

SCORE_COLUMN = "predicted_score"
SHOWN_ROWS = 10


# ----------------------------------------------------------------------------- scoring a file
def _bad_rows(table, column: str, rows: list[int], what: str) -> Exception:
    """A DataError at the first of ``rows`` (1-based) saying how many there are and listing up to 10."""
    j = table.index(column)
    shown = ", ".join(map(str, rows[:SHOWN_ROWS])) + (", ..." if len(rows) > SHOWN_ROWS else "")
    return table.error(f"{what}: {table.rows[rows[0] - 1][j]!r}; {len(rows)} row(s) of this file are like this "
                       f"(rows {shown}); nothing was scored", row=rows[0], column=column)


def output_columns(class_names: Sequence[str]) -> list[str]:
    """The columns :func:`score_csv` adds: ``predicted_score``, then ``p_<class name>`` per class."""
    return [SCORE_COLUMN] + [f"p_{c}" for c in class_names]


def score_csv(model, input_path, output_path, text_column: str = "response"):
    """Score every response of ``input_path`` (CSV, or TSV for ``.tsv``/``.tab``) with ``model``
    (a :class:`Student` or the folder of a saved one) and write ``output_path`` (UTF-8 CSV).

    Returns the written frame: the n input rows in input order, every input column as read (str),
    then ``predicted_score`` (the class name of the argmax) and ``p_<class>`` (n, K) rounded to 6 decimals.
    """
    import pandas as pd

    student = model if isinstance(model, Student) else Student.load(model)
    input_path, output_path = Path(input_path), Path(output_path)
    delimiter = "\t" if input_path.suffix.lower() in (".tsv", ".tab") else ","
    table = read_table(input_path, delimiter=delimiter, require_rows=True)
    table.require([text_column])
    added = output_columns(student.class_names)
    for name in added:
        if table.has(name):
            raise table.error(f"the input already has a column {name!r}, which scoring adds "
                              f"(it adds {added}); rename or remove it", row=0, column=name)
    if output_path.resolve() == input_path.resolve():
        raise ValueError(f"the output {output_path} would overwrite the input; give another --output")

    texts = table.column(text_column)
    empty = [r for r, t in enumerate(texts, start=1) if is_empty_text(t)]
    if empty:
        raise _bad_rows(table, text_column, empty, "empty response")
    no_letter = [r for r, t in enumerate(texts, start=1) if not any(ch.isalpha() for ch in t)]
    if no_letter:
        raise _bad_rows(table, text_column, no_letter, "a response with no letter at all (not text)")

    proba = student.predict_proba(texts).astype(np.float64)                         # (n, K)
    frame = pd.DataFrame(table.rows, columns=table.header, dtype=object)
    frame[SCORE_COLUMN] = [student.class_names[k] for k in proba.argmax(axis=1)]
    for k, name in enumerate(added[1:]):
        frame[name] = proba[:, k].round(6)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(output_path, index=False, encoding="utf-8", float_format="%.6f")
    return frame


# ----------------------------------------------------------------------------- ONNX
class _Probabilities(nn.Module):
    """(B, T) int64 word indices -> (B, K) softmax probabilities."""

    def __init__(self, model: LSTMStudent):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(ids), dim=-1)


def export_onnx(student, path, opset: int = 17) -> Path:
    """Write ``student`` (a :class:`Student` or an :class:`LSTMStudent`) to ``path`` as ONNX:
    input ``ids`` (batch, words) int64, output ``proba`` (batch, K); both axes of ``ids`` dynamic."""
    import onnx

    model = student.model if isinstance(student, Student) else student
    wrapper = _Probabilities(model).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.tensor([[2, 3, 4], [5, 0, 0]], dtype=torch.int64).clamp(max=model.config.vocab_size - 1)
    with warnings.catch_warnings():
        # torch>=2.9 warns that the TorchScript exporter is deprecated; it is chosen on purpose (much faster here)
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript-based ONNX")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message="The feature will be removed")
        # nn.LSTM's own shape checks while tracing, and a caution about batch sizes that the tests rule out
        # (the exported file is checked at batch 1 and 32 against PyTorch)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning, message="Exporting a model to ONNX with a batch_size")
        torch.onnx.export(wrapper, (example,), str(path), input_names=["ids"], output_names=["proba"],
                          dynamic_axes={"ids": {0: "batch", 1: "words"}, "proba": {0: "batch"}},
                          opset_version=opset, dynamo=False)
    onnx.checker.check_model(str(path))
    return path


def onnx_session(path, intra_op_num_threads: int | None = None):
    """An onnxruntime CPU session for the file :func:`export_onnx` wrote."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if intra_op_num_threads is not None:
        options.intra_op_num_threads = int(intra_op_num_threads)
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def onnx_predict_proba(session, ids: np.ndarray) -> np.ndarray:
    """(B, T) int64 word indices -> (B, K) float32 probabilities, by onnxruntime."""
    return session.run(["proba"], {"ids": np.ascontiguousarray(ids, dtype=np.int64)})[0]


def onnx_max_difference(student: Student, path, texts: Sequence[str], batch_size: int = 64) -> float:
    """Largest absolute difference between PyTorch's and onnxruntime's (n, K) probabilities over
    ``texts``, in batches of ``batch_size`` (``path``: the ONNX file, or a session of it)."""
    session = onnx_session(path) if isinstance(path, (str, Path)) else path
    texts, worst = list(texts), 0.0
    for i in range(0, len(texts), batch_size):
        ids = student.encode(texts[i: i + batch_size])                              # (b, T)
        torch_p = student.model.predict_proba(ids).numpy()
        worst = max(worst, float(np.abs(torch_p - onnx_predict_proba(session, ids.numpy())).max()))
    return worst
