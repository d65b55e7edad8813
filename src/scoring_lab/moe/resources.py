"""The paper's Table 4 on this machine: each model's parameters, size on disk and latency per response
from raw text (tokenizer, every encoder layer, MoE, head), cached by the models and the machine."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from ..models.cache import code_version
from ..models.latency import device_description, latency_per_response
from ..models.per_task import TrainedScorer
from . import multitask
from .protocol import GUIDED, INDIVIDUAL, MTL, StudySetup
from .store import FittedModel, deployable

RESOURCES_KIND = "moe-resources"


def disk_mb(state: dict[str, torch.Tensor]) -> float:
    """Megabytes (10^6 bytes) of ``state`` saved as safetensors (shared tensors saved once)."""
    seen, unique = set(), {}
    for k, v in state.items():
        ptr = (v.data_ptr(), tuple(v.shape))
        if ptr in seen:
            continue
        seen.add(ptr)
        unique[k] = v.detach().contiguous().clone()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.safetensors"
        save_file(unique, str(path))
        return path.stat().st_size / 1e6


def latencies(predictors: dict[str, object], texts: list[str], repeats: int, rounds: int = 2) -> dict[str, tuple]:
    """{name: (ms per response at batch 1, at batch 32)}: each predictor timed in turn, ``rounds`` times
    round-robin (10 untimed calls first each time; ``repeats`` timed ones at batch 1), the fastest
    round's median kept, so no model pays for running first or for a passing load on the machine."""
    best: dict[str, list[float]] = {k: [np.inf, np.inf] for k in predictors}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, predict in predictors.items():
                for j, (size, timed) in enumerate(((1, repeats), (32, max(2, repeats // 4)))):
                    sec = latency_per_response(predict, texts, size, repeats=timed, warmup=10 if size == 1
                                               else 2)["seconds_per_response"]
                    best[name][j] = min(best[name][j], 1000 * sec)
    return {k: tuple(v) for k, v in best.items()}


def measure_resources(setup: StudySetup, guided: FittedModel, mtl: FittedModel,
                      teacher: TrainedScorer) -> pd.DataFrame:
    """model, params, disk_mb, latency_ms_batch1, latency_ms_batch32 of UniMoE-Guided, MTL, the per-task
    scorers of the training tasks (together) and one task's ``teacher``, timed on the first training
    task's test responses; relative_size: disk size relative to UniMoE-Guided."""
    task = setup.old[0]
    texts = list(setup.tasks[task].test.texts)
    max_len = setup.profile.train.max_length
    models = {GUIDED: deployable(guided, setup.backbone.model), MTL: deployable(mtl, setup.backbone.model)}
    one = setup.scorers[task].scorer
    teacher_model = teacher.scorer
    predictors = {name: (lambda batch, m=m: multitask.predict_texts(m, setup.backbone.tokenizer, batch, task,
                                                                   max_len)) for name, m in models.items()}
    predictors[INDIVIDUAL] = lambda batch: one.predict_proba(list(batch), batch_size=32)
    if setup.settings.teacher:
        predictors["teacher"] = lambda batch: teacher_model.predict_proba(list(batch), batch_size=32)
    lat = latencies(predictors, texts, setup.settings.latency_repeats)
    rows = [{"model": name, "params": multitask.parameter_count(m), "disk_mb": disk_mb(m.state_dict()),
             "latency_ms_batch1": lat[name][0], "latency_ms_batch32": lat[name][1]} for name, m in models.items()]
    sizes = [(multitask.parameter_count(setup.scorers[t].scorer), disk_mb(setup.scorers[t].scorer.state_dict()))
             for t in setup.old]
    rows.append({"model": f"{INDIVIDUAL} ({len(setup.old)} models)", "params": sum(p for p, _ in sizes),
                 "disk_mb": sum(d for _, d in sizes), "latency_ms_batch1": lat[INDIVIDUAL][0],
                 "latency_ms_batch32": lat[INDIVIDUAL][1]})
    t_lat = lat["teacher"] if setup.settings.teacher else lat[INDIVIDUAL]
    rows.append({"model": "Teacher (one task's)" if setup.settings.teacher else
                 "Teacher (one task's: its per-task scorer)", "params": multitask.parameter_count(teacher_model),
                 "disk_mb": disk_mb(teacher_model.state_dict()), "latency_ms_batch1": t_lat[0],
                 "latency_ms_batch32": t_lat[1]})
    table = pd.DataFrame(rows)
    table["relative_size"] = table["disk_mb"] / float(table.loc[0, "disk_mb"])
    return table


def resources_table(setup: StudySetup, guided: FittedModel, mtl: FittedModel, teacher: TrainedScorer) -> pd.DataFrame:
    """:func:`measure_resources`, cached by the models, the teacher and the machine (device, threads)."""
    inputs = {"guided": guided.key, "mtl": mtl.key, "scorers": {t: setup.scorers[t].key for t in setup.old},
              "teacher": teacher.key, "device": device_description(),
              "threads": torch.get_num_threads(), "repeats": setup.settings.latency_repeats,
              "code": code_version(multitask, latency_per_response, measure_resources)}

    def produce(folder: Path):
        measure_resources(setup, guided, mtl, teacher).to_csv(folder / "resources.csv", index=False)

    table, _ = setup.cache.get_or_compute(RESOURCES_KIND, inputs, produce,
                                          lambda art: pd.read_csv(art.file("resources.csv")))
    return table
