"""The KD student shipped, and the size and speed of every model of a set: the student saved as a deployable
folder with its ONNX export beside it, each model's parameters, MB and CPU seconds per response, and the
ratios the paper claims."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from . import deploy
from . import student as student_module
from .fine_tuned import FineTunedTransformers
from .plan import ANN, KD_STUDENT, SMALL, TEACHER
from .students import StudentsAndANN
from ..models.latency import latency_per_response


def ship_student(models: StudentsAndANN, name: str, folder: Path, n_example: int = 5) -> dict:
    """Save the KD student of set ``name`` (the plan's seed) as a deployable folder, export it to ONNX
    beside it, check ONNX against PyTorch on the whole test split, and score an example CSV of
    ``n_example`` test responses with :func:`scoring_lab.kd.deploy.score_csv`."""
    folder = Path(folder)
    task = models.sets[name]
    trained = models.kd_student(name, models.plan.seed)
    trained.student.about.update({"set": name, "role": task.meta.get("role", "")})
    trained.student.save(folder)
    onnx_path = deploy.export_onnx(trained.student, folder / "student.onnx")
    example = folder / "example_responses.csv"
    pd.DataFrame({"id": task.test.ids[:n_example], "response": task.test.texts[:n_example],
                  "human_score": task.test.scores[:n_example]}).to_csv(example, index=False)
    scored = deploy.score_csv(folder, example, folder / "example_scored.csv", text_column="response")
    return {"folder": folder, "onnx": onnx_path,
            "onnx_max_difference": deploy.onnx_max_difference(trained.student, onnx_path, task.test.texts),
            "example": scored}


def _folder_mb(path: Path) -> float:
    path = Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


def _student_mb(folder: Path) -> float:
    """MB of a saved student's own two files (not the cache's manifest beside them)."""
    return sum((Path(folder) / f).stat().st_size for f in (student_module.CONFIG_FILE, student_module.WEIGHTS_FILE)) / 2**20


def _parameters(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def size_and_speed(transformers: FineTunedTransformers, models: StudentsAndANN, name: str, onnx_path: Path,
                   n_responses: int = 32, threads: int = 1, repeats: int = 3) -> pd.DataFrame:
    """Per model of set ``name`` (the plan's seed): parameters, weights MB (float32 transformers,
    float64 ANN), saved MB where the model is saved as a file, and CPU seconds per response at batch 1
    and batch 32 (median of ``repeats``, after one untimed call), all with ``threads`` threads (PyTorch and
    onnxruntime alike). ``benchmarks/bench_kd_latency.py`` times the same models at length."""
    task = models.sets[name]
    texts = list(task.test.texts[:n_responses])
    kd_student = models.kd_student(name, models.plan.seed)
    session = deploy.onnx_session(onnx_path, intra_op_num_threads=threads)
    ann = models.fit_ann(name, models.plan.seed)
    teacher, small = transformers.teacher(name).scorer, transformers.small_transformer(name).scorer
    table = [
        (TEACHER, _parameters(teacher), 4 * _parameters(teacher), None,
         lambda b: teacher.predict_proba(b, batch_size=len(b))),
        (SMALL, _parameters(small), 4 * _parameters(small), None, lambda b: small.predict_proba(b, batch_size=len(b))),
        (ANN, ann.n_parameters, 8 * ann.n_parameters, None, ann.predict_proba),
        (f"{KD_STUDENT} (PyTorch)", kd_student.student.n_parameters, 4 * kd_student.student.n_parameters,
         _student_mb(kd_student.path), kd_student.student.predict_proba),
        (f"{KD_STUDENT} (ONNX Runtime)", kd_student.student.n_parameters, 4 * kd_student.student.n_parameters,
         _folder_mb(onnx_path), lambda b: deploy.onnx_predict_proba(session, kd_student.student.encode(b).numpy())),
    ]
    rows = []
    with student_module.torch_threads(threads):
        for model, params, weight_bytes, saved_mb, predict in table:
            row = {"model": model, "parameters": params, "weights_mb": weight_bytes / 2**20, "saved_mb": saved_mb}
            for b in (1, 32):
                timed = latency_per_response(predict, texts, batch_size=b, repeats=repeats, warmup=1)
                row[f"seconds_per_response_b{b}"] = timed["seconds_per_response"]
            rows.append(row)
    return pd.DataFrame(rows)


def response_latencies(transformers: FineTunedTransformers, models: StudentsAndANN, name: str, n_responses: int = 32,
                       threads: int = 1) -> pd.DataFrame:
    """Seconds of the small transformer and the KD student (PyTorch, the plan's seed) on each of the first
    ``n_responses`` test responses of set ``name``, one response at a time, the two models in turn on
    each (so a slower moment of the machine slows both), after one untimed call of each: response,
    small_seconds, student_seconds. The spread of a speed-up over responses
    (:func:`scoring_lab.kd.claim_tests.speedup_band`)."""
    texts = list(models.sets[name].test.texts[:n_responses])
    small = transformers.small_transformer(name).scorer
    student = models.kd_student(name, models.plan.seed).student
    runs = {"small_seconds": lambda b: small.predict_proba(b, batch_size=1), "student_seconds": student.predict_proba}
    rows = []
    with student_module.torch_threads(threads):
        for predict in runs.values():
            predict(texts[:1])
        for i, text in enumerate(texts):
            row = {"response": i}
            for column, predict in runs.items():
                start = time.perf_counter()
                predict([text])
                row[column] = time.perf_counter() - start
            rows.append(row)
    return pd.DataFrame(rows)


def ratios(sizes: pd.DataFrame) -> dict:
    """The paper's two size and speed claims, measured: teacher / student parameters, and the small
    transformer's seconds per response over the student's (PyTorch and ONNX, batch 1 and 32)."""
    by = sizes.set_index("model")
    student, onnx_row = by.loc[f"{KD_STUDENT} (PyTorch)"], by.loc[f"{KD_STUDENT} (ONNX Runtime)"]
    out = {"teacher_parameters": int(by.loc[TEACHER, "parameters"]),
           "parameter_ratio": by.loc[TEACHER, "parameters"] / student["parameters"],
           "small_parameter_ratio": by.loc[SMALL, "parameters"] / student["parameters"]}
    for b in (1, 32):
        col = f"seconds_per_response_b{b}"
        out[f"speedup_b{b}"] = by.loc[SMALL, col] / student[col]
        out[f"speedup_onnx_b{b}"] = by.loc[SMALL, col] / onnx_row[col]
        out[f"teacher_speedup_b{b}"] = by.loc[TEACHER, col] / student[col]
    return out


def in_milliseconds(sizes: pd.DataFrame) -> pd.DataFrame:
    """:func:`size_and_speed`'s table with the seconds per response shown as milliseconds."""
    out = sizes.drop(columns=[f"seconds_per_response_b{b}" for b in (1, 32)])
    for b in (1, 32):
        out[f"ms per response, batch {b}"] = 1000 * sizes[f"seconds_per_response_b{b}"]
    return out
