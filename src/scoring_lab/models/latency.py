"""Timing a model and naming the device it ran on: what every chapter shares to compare speeds.

:func:`latency_per_response` times any ``predict(batch)`` callable the same way, so the KD
student, its ONNX file, the transformer scorers and the multi-task models are compared on equal
terms; :func:`device_description` says what the numbers were measured on.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence


def device_description() -> str:
    """What the chapter ran on: the GPU's name, or ``cpu (N threads)``."""
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def latency_per_response(predict: Callable, inputs: Sequence, batch_size: int, repeats: int = 20,
                         warmup: int = 3) -> dict:
    """Median seconds per response of ``predict(batch)``, timed with ``time.perf_counter`` on
    consecutive batches (lists) of ``batch_size`` items of ``inputs``, wrapping around at the end.

    ``warmup`` calls are made first and not timed; then ``repeats`` timed calls.
    """
    inputs = list(inputs)
    if not inputs:
        raise ValueError("latency_per_response needs at least one input")
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"batch_size and repeats must be >= 1 and warmup >= 0; got {batch_size}, {repeats}, {warmup}")
    n = len(inputs)
    batches = [[inputs[(k * batch_size + j) % n] for j in range(batch_size)] for k in range(warmup + repeats)]
    seconds = []
    for k, batch in enumerate(batches):
        start = time.perf_counter()
        predict(batch)
        if k >= warmup:
            seconds.append((time.perf_counter() - start) / batch_size)
    return {"batch_size": int(batch_size), "seconds_per_response": float(statistics.median(seconds)),
            "responses_timed": int(repeats * batch_size)}
