"""Per-task scorers, trained once and taken from the artifact cache after.

These are the project's shared endpoints: the GW chapter's models to merge and
pre-merge baseline, the MoE chapter's "Individual" baseline and teachers, the IRT
chapter's population, the KD chapter's teachers. A scorer's cache key covers the
task's training data (train and val), the training settings, the seed and the
code of the modules that train it, so any change retrains and nothing stale is
reused.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import backbone as backbone_module
from . import scorer as scorer_module
from . import training as training_module
from .cache import Artifact, ArtifactCache, code_version, stable_hash
from ..data.task import Split, Task
from ..metrics import MULTICLASS_METRICS, MULTILABEL_METRICS, multiclass_report, multilabel_report, weighted_mean
from ..profiles import TrainSettings
from .scorer import Scorer, ScorerSpec

SCORER_KIND = "scorer"
PAPERS_MAX_LENGTH = 100   # tokens: the GW and MoE papers' truncation
PREDICTION_KIND = "predictions"
FEATURE_KIND = "features"


def split_fingerprint(split: Split) -> str:
    """Hash of a split's ids, texts, labels and scores."""
    return stable_hash({
        "ids": [str(i) for i in split.ids],
        "texts": list(split.texts),
        "labels": None if split.labels is None else split.labels.tolist(),
        "scores": None if split.scores is None else split.scores.tolist(),
    })


def task_fingerprint(task: Task, splits=("train", "val")) -> str:
    """Hash of what training sees of a task: its kind, label names and the given splits."""
    return stable_hash({"name": task.name, "kind": task.kind, "labels": list(task.label_names),
                        "n_classes": task.n_classes,
                        "splits": {s: split_fingerprint(task.splits()[s]) for s in splits}})


def scorer_code_version() -> str:
    return code_version(backbone_module, scorer_module, training_module)


def scorer_inputs(task: Task, settings: TrainSettings, seed: int) -> dict:
    """Everything a trained scorer depends on: the cache key's inputs."""
    return {"task": task.name, "data": task_fingerprint(task), "train": asdict(settings), "seed": int(seed),
            "code": scorer_code_version()}


@dataclass
class TrainedScorer:
    """A scorer from the cache. Its weights load on first use of ``scorer``: predictions of splits it
    has scored before come from the cache without it (a warm chapter loads no model it does not run)."""

    task: str
    load_scorer: Callable[[], Scorer] = field(repr=False)
    history: pd.DataFrame
    info: dict
    key: str
    from_cache: bool
    cache: ArtifactCache = field(repr=False, default=None)
    heldout_val: tuple[str, np.ndarray] | None = field(repr=False, default=None)  # refit: (val fingerprint, proba)
    _scorer: Scorer | None = field(repr=False, default=None)

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = self.load_scorer()
        return self._scorer

    def predict_proba(self, split: Split) -> np.ndarray:
        """(n, L) or (n, K) probabilities for a split, cached by scorer and split content.

        A refit scorer (``train.refit``) trained on its validation split too: asked for that split, it
        answers the early-stopped run's probabilities, the held-out predictions that validation-tuned
        steps (ordinal cut points, decoding choice) need."""
        fingerprint = split_fingerprint(split)
        if self.heldout_val is not None and fingerprint == self.heldout_val[0]:
            return self.heldout_val[1]
        return self._cached_array(PREDICTION_KIND, "proba.npy", split, lambda: self.scorer.predict_proba(split.texts))

    def features(self, split: Split) -> np.ndarray:
        """(n, H) pooled final-layer embeddings of a split's responses ([CLS] unless the scorer pools by
        mean: the GW paper's features), cached by scorer and split content."""
        return self._cached_array(FEATURE_KIND, "features.npy", split, lambda: self.scorer.features(split.texts))

    def _cached_array(self, kind: str, filename: str, split: Split, compute) -> np.ndarray:
        inputs = {"scorer": self.key, "split": split_fingerprint(split)}

        def produce(folder: Path):
            np.save(folder / filename, compute())

        value, _ = self.cache.get_or_compute(kind, inputs, produce, lambda art: np.load(art.file(filename)))
        return value

    def predict(self, split: Split) -> np.ndarray:
        proba = self.predict_proba(split)
        if self._scorer is not None:
            return self._scorer.decide(proba)
        # Scorer.decide reads nothing but the spec: decide from the saved spec, without loading the weights
        return Scorer.decide(SimpleNamespace(spec=self.spec), proba)

    @property
    def spec(self) -> ScorerSpec:
        if self._scorer is not None:
            return self._scorer.spec
        return ScorerSpec(**json.loads((self.cache.path(SCORER_KIND, self.key) / "scorer.json").read_text()))


HELDOUT_VAL_FILE = "heldout_val_proba.npy"


def _save_trained(result: training_module.TrainResult, folder: Path, val: Split) -> None:
    result.scorer.save(folder, names=result.trained_parameters)  # the head is among them
    result.history.to_csv(folder / "history.csv", index=False)
    info = dict(result.info)
    if result.heldout_val_proba is not None:
        np.save(folder / HELDOUT_VAL_FILE, result.heldout_val_proba)
        info["heldout_val_fingerprint"] = split_fingerprint(val)
    (folder / "info.json").write_text(json.dumps(info, indent=2))


def _load_trained(art: Artifact) -> tuple[Callable[[], Scorer], pd.DataFrame, dict, tuple | None]:
    """(loader of the scorer, history, info, held-out validation probabilities); the files were checked
    against their checksums already, the weights load when first needed."""
    info = json.loads(art.file("info.json").read_text())
    heldout = ((info["heldout_val_fingerprint"], np.load(art.file(HELDOUT_VAL_FILE)))
               if "heldout_val_fingerprint" in info else None)
    return (lambda: Scorer.load(art.path)), pd.read_csv(art.file("history.csv")), info, heldout


def get_scorer(task: Task, settings: TrainSettings, seed: int = 0, cache: ArtifactCache | None = None,
               progress: bool = True) -> TrainedScorer:
    """The scorer for ``task``: from the cache when there, else trained now and cached."""
    cache = cache or ArtifactCache()
    inputs = scorer_inputs(task, settings, seed)

    def produce(folder: Path):
        _save_trained(training_module.train_scorer(task, settings, seed=seed, progress=progress), folder, task.val)

    (load_scorer, history, info, heldout), hit = cache.get_or_compute(SCORER_KIND, inputs, produce, _load_trained)
    return TrainedScorer(task.name, load_scorer, history, info, cache.key(inputs), hit, cache, heldout)


def get_scorers(tasks: dict[str, Task], settings: TrainSettings, seed: int = 0,
                cache: ArtifactCache | None = None, progress: bool = True) -> dict[str, TrainedScorer]:
    """One scorer per task (trained once, cached), in the tasks' order."""
    cache = cache or ArtifactCache()
    return {name: get_scorer(t, settings, seed, cache, progress)
            for name, t in tqdm(tasks.items(), desc="per-task scorers", unit="task", disable=not progress)}


KIND_METRICS = {"multilabel": "micro_f1", "multiclass": "qwk"}
KIND_LABELS = {"micro_f1": "micro-F1", "macro_f1": "macro-F1", "exact_match": "exact match",
               "per_label_accuracy": "per-label accuracy", "kappa": "Cohen's kappa", "accuracy": "accuracy",
               "qwk": "quadratic weighted kappa"}


def task_kind(tasks: dict[str, Task]) -> str:
    """The one kind ("multilabel" or "multiclass") of every task of a run; mixed kinds are an error."""
    kinds = sorted({t.kind for t in tasks.values()})
    if len(kinds) != 1:
        raise ValueError(f"the tasks mix kinds {kinds}: a chapter scores one kind at a time "
                         "(load the multi-label and the multi-class tasks as separate runs)")
    return kinds[0]


def main_metric(kind: str) -> str:
    """The headline test metric of a kind: micro-F1 (multi-label, the GW paper's) or QWK (multi-class)."""
    return KIND_METRICS[kind]


def metric_columns(kind: str) -> tuple[str, ...]:
    """The metric columns of a kind's tables, headline first."""
    names = MULTILABEL_METRICS if kind == "multilabel" else MULTICLASS_METRICS
    return (main_metric(kind), *(c for c in names if c != main_metric(kind)))


def report(task: Task, pred: np.ndarray, split: str = "test") -> dict:
    """Metrics of predictions ``pred`` ((n, L) 0/1 or (n,) classes) on one split of ``task``."""
    s = task.splits()[split]
    if task.kind == "multilabel":
        return multilabel_report(s.labels, pred)
    return multiclass_report(s.scores, pred, task.n_classes)


def evaluate(model, task: Task, split: str = "test") -> dict:
    """Metrics of one model (a scorer, or anything with ``predict(split)``) on one split of its task
    (held-out test by default)."""
    return report(task, model.predict(task.splits()[split]), split)


def metrics_table(scorers: dict, tasks: dict[str, Task], split: str = "test",
                  with_mean: bool = True) -> pd.DataFrame:
    """One row per task (``task, micro_f1, macro_f1, exact_match, per_label_accuracy, kappa, n_test``
    for multi-label tasks, ``task, accuracy, macro_f1, qwk, n_test`` for multi-class ones), plus a
    last row ``weighted mean`` weighted by test size. ``scorers``: task -> model with ``predict(split)``."""
    rows = [{"task": name, **evaluate(scorers[name], tasks[name], split)} for name in scorers]
    table = pd.DataFrame(rows)
    if with_mean:
        mean = weighted_mean(table.drop(columns=["task"]))
        table = pd.concat([table, pd.DataFrame([{"task": "weighted mean", **mean}])], ignore_index=True)
    return table


def count_ahead(ours: pd.DataFrame, theirs: pd.DataFrame, column: str) -> int:
    """On how many tasks (``weighted mean`` excluded) ``ours`` scores strictly higher than ``theirs``
    in ``column``; both are :func:`metrics_table` outputs over the same tasks."""
    a = ours[ours["task"] != "weighted mean"].set_index("task")[column]
    b = theirs[theirs["task"] != "weighted mean"].set_index("task")[column].reindex(a.index)
    return int((a > b).sum())


def side_by_side(tables: dict[str, pd.DataFrame], columns) -> pd.DataFrame:
    """Per task (rows of the first table, ``weighted mean`` included), each of ``columns`` for each
    model: columns ``<metric> (<model>)``. ``tables``: model name -> :func:`metrics_table` output."""
    names = list(tables)
    out = tables[names[0]][["task"]].copy()
    for c in columns:
        for n in names:
            out[f"{c} ({n})"] = tables[n].set_index("task")[c].reindex(out["task"]).to_numpy()
    return out


def training_curves(scorers: dict[str, TrainedScorer]) -> pd.DataFrame:
    """Long table of every scorer's history: task, epoch, train_loss, val_loss, val_score, seconds."""
    return pd.concat([ts.history.assign(task=name) for name, ts in scorers.items()], ignore_index=True)


def count_in_band(metrics: pd.DataFrame, column: str = "micro_f1", low: float = 0.75,
                  high: float = 0.9) -> int:
    """How many tasks (the ``weighted mean`` row excluded) have ``low <= column <= high``."""
    per = metrics.loc[metrics["task"] != "weighted mean", column]
    return int(((per >= low) & (per <= high)).sum())


def token_lengths(tasks: dict[str, Task], tokenizer) -> np.ndarray:
    """(n_responses,) untruncated token counts of every response of ``tasks`` (every split)."""
    texts = [x for t in tasks.values() for s in t.splits().values() for x in s.texts]
    return np.array([len(ids) for ids in tokenizer(texts)["input_ids"]], dtype=int) if texts else np.zeros(0, int)


def truncated_share(tasks: dict[str, Task], tokenizer, max_lengths=(64, 100)) -> dict[int, float]:
    """{max_length: share of all responses (every split) longer than that many tokens}."""
    lengths = token_lengths(tasks, tokenizer)
    return {m: float((lengths > m).mean()) if len(lengths) else 0.0 for m in max_lengths}


def shorter_length(base: TrainSettings) -> int:
    """The truncation the choices ladder compares ``base`` with: the papers' 100 tokens when
    ``base`` allows more, else 64."""
    return PAPERS_MAX_LENGTH if base.max_length > PAPERS_MAX_LENGTH else 64


def shortcut_ladder(base: TrainSettings, full_lr: float = 5e-5) -> list[tuple[str, TrainSettings]]:
    """A full fine-tune, the profile's ``base``, and ``base`` with one choice changed at a time.

    1. full fine-tune: every layer trains (``full_lr``, since the papers' 2e-5 needs
       more epochs than a CPU budget allows), batches grouped by length as in ``base``;
    2. ``base`` itself: only its top ``trainable_layers`` train, over cached lower states;
    3. ``base`` with batches in plain random order (what length grouping buys);
    4. ``base`` with a shorter max_length: the papers' 100 tokens when ``base`` allows more,
       else 64 (a shortcut this project does *not* take);
    5. ``base`` with the other pooling ([CLS] or the mean of the token states).
    """
    full = replace(base, trainable_layers=None, lr=full_lr, lora=None)
    other = "cls" if base.pooling == "mean" else "mean"
    shorter = shorter_length(base)
    pooled = {"cls": "[CLS] pooling (the papers')", "mean": "mean pooling"}[other]
    return [
        ("full fine-tune (all layers)", full),
        (f"top {base.trainable_layers} layers only (the profile)", base),
        ("  ... without length-grouped batches", replace(base, group_by_length=not base.group_by_length)),
        (f"  ... with max length {shorter}" + (" (the papers')" if shorter == PAPERS_MAX_LENGTH else ""),
         replace(base, max_length=shorter)),
        (f"  ... with {pooled}", replace(base, pooling=other)),
    ]


def shortcut_costs(task: Task, base: TrainSettings, seed: int = 0, cache: ArtifactCache | None = None,
                   full_lr: float = 5e-5, progress: bool = True, tokenizer=None) -> pd.DataFrame:
    """Test metrics and training cost of each rung of :func:`shortcut_ladder` on one task; ``tokenizer``, the
    backbone's, counts the responses' tokens (default: the first rung's, whose weights it then loads).

    Columns: setting, the task kind's metrics (:func:`metric_columns`), train_seconds,
    seconds_per_epoch, epochs_run, best_epoch, trainable_params, max_length, trainable_layers, lr,
    pooling, responses_cut (the task's responses, every split, longer than the rung's max_length), trained_apart.
    Seconds are those measured when the scorer was trained (kept in the cache). The shorter max_length's rung is
    trained apart only when one of the task's responses is longer than the shorter of its limit and the profile's:
    else every token id the scorer sees, in training and in testing, is the profile's (padding is dynamic), so its
    row is the profile's scorer (``trained_apart`` False), by construction.
    """
    if base.trainable_layers is None:
        raise ValueError("the profile fine-tunes every layer already: there is no shortcut to measure")
    rows, profiles, lengths = [], None, None
    for label, settings in shortcut_ladder(base, full_lr):
        same_inputs = (profiles is not None and settings == replace(base, max_length=settings.max_length)
                       and not (lengths > min(settings.max_length, base.max_length)).any())
        ts = profiles if same_inputs else get_scorer(task, settings, seed, cache, progress)
        if lengths is None:     # every rung has the backbone's tokenizer
            lengths = token_lengths({task.name: task}, tokenizer or ts.scorer.tokenizer)
        if settings == base:
            profiles = ts
        m = evaluate(ts, task)
        rows.append({"setting": label, **{k: v for k, v in m.items() if k != "n_test"},
                     "train_seconds": ts.info["seconds"],
                     "seconds_per_epoch": float(ts.history.loc[ts.history["epoch"] > 0, "seconds"].mean()),
                     "epochs_run": ts.info["epochs_run"], "best_epoch": ts.info["best_epoch"],
                     "trainable_params": ts.info["n_trainable"],
                     "max_length": settings.max_length, "trainable_layers": settings.trainable_layers or "all",
                     "lr": settings.lr, "pooling": settings.pooling,
                     "responses_cut": int((lengths > settings.max_length).sum()), "trained_apart": not same_inputs})
    return pd.DataFrame(rows)


def papers_apply(tasks: dict[str, Task]) -> bool:
    """Whether the papers' per-task figures apply: multi-label tasks, some named as the papers' tasks."""
    from .. import published

    known = set(published.individual_scorers()[0]["task"])
    return all(t.kind == "multilabel" for t in tasks.values()) and bool(known & set(tasks))


def weighted_mean_vs_published(metrics: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Two rows, this run's weighted test means and the GW paper's published pre-merged ones, in the
    columns micro_f1, macro_f1, exact_match, per_label_accuracy (first column ``weighted mean``)."""
    from .. import published

    theirs, _ = published.pre_merge_weighted_mean()
    ours = metrics.set_index("task").loc["weighted mean"]
    cols = ["micro_f1", "macro_f1", "exact_match", "per_label_accuracy"]
    return pd.DataFrame([{"weighted mean": f"this book ({profile} profile, test split)", **{c: ours[c] for c in cols}},
                         {"weighted mean": "GW paper, pre-merged models (published)", **{c: theirs[c] for c in cols}}])


def compare_with_published(metrics: pd.DataFrame, published: pd.DataFrame,
                           columns=("micro_f1", "macro_f1", "per_label_accuracy", "kappa")) -> pd.DataFrame:
    """Per task, this run's test metrics beside the paper's: ``paper task`` (the paper's own task
    number, when the published table has one), then columns ``<metric>`` and ``<metric> (paper)``."""
    ours = metrics[metrics["task"] != "weighted mean"].set_index("task")
    theirs = published.set_index("task")
    out = pd.DataFrame(index=ours.index)
    if "number" in theirs.columns:
        out["paper task"] = theirs["number"].reindex(ours.index).astype("Int64")
    for c in columns:
        out[c] = ours[c]
        out[f"{c} (paper)"] = theirs[c].reindex(ours.index)
    return out.reset_index()


def _is_synthetic(tasks: dict[str, Task] | None) -> bool:
    return bool(tasks) and all("family" in t.meta for t in tasks.values())


def pre_merge_claims(metrics: pd.DataFrame, scorers: dict | None = None, tasks: dict[str, Task] | None = None,
                     n_resamples: int = 2000, seed: int = 0) -> list:
    """Claims: the per-task scorers score like the papers' individually fine-tuned ones: the GW
    paper's weighted means (Table 3, 'Pre-Merged'), the UniMoE paper's means over its Tasks 1-7
    (Table 3, 'Individual') and its per-task micro-F1 (Tables 3 and 5).

    On the synthetic benchmark (``tasks`` generated) these figures are **by construction**: the
    benchmark's difficulty was tuned so per-task scorers land near the papers' figures, so they show
    the calibration, never evidence. On real data with the papers' tasks they are measured: each
    figure's 95% bootstrap interval over the test responses (``scorers[name].predict(task.test)``)
    against the paper's figure ± :data:`scoring_lab.claims.HELD_WITHIN`."""
    from .. import claims, published, verdicts
    from ..paired_metrics import MULTILABEL, pair

    per = metrics[metrics["task"] != "weighted mean"].set_index("task")
    synthetic = _is_synthetic(tasks) or scorers is None
    base = ("synthetic benchmark with this profile's backbone, whose difficulty was tuned so per-task scorers land "
            "near the papers' figures: a calibration, not a finding" if synthetic else
            "this source's test responses, against BERT-base on the real PASTA data")
    out = []
    means, _ = published.pre_merge_weighted_mean()
    names = {"micro_f1": "micro-F1", "macro_f1": "macro-F1", "exact_match": "exact match",
             "per_label_accuracy": "per-label accuracy"}
    individual, _ = published.individual_scorers()
    individual = individual.set_index("task")
    known = [t for t in per.index if t in individual.index]
    multilabel = "micro_f1" in per.columns
    band = claims.HELD_WITHIN

    def measured(claim, paper, theirs, metric, names_, combine, note):
        samples = {t: (tasks[t].test.labels, scorers[t].predict(tasks[t].test), scorers[t].predict(tasks[t].test))
                   for t in names_}
        v = verdicts.figure_band(pair(MULTILABEL[metric], samples, combine), theirs - band, theirs + band,
                                 n_resamples, seed)
        return claims.judged(paper, claim, f"{theirs:.3f}", v, note, signed=False)

    for metric, theirs in means.items():
        claim = f"Per-task fine-tuned scorers (Pre-Merged) reach a weighted-mean {names[metric]} of {theirs:.3f}"
        if not known or not multilabel:
            out.append(claims.not_tested("gw", claim, f"{theirs:.3f}", "needs the papers' nine multi-label tasks"))
            continue
        if not synthetic:
            out.append(measured(claim, "gw", theirs, metric, known, "weighted", f"{base}; tasks weighted by test size"))
            continue
        w = per.loc[known, "n_test"]
        ours = float((per.loc[known, metric] * w).sum() / w.sum())
        out.append(claims.close_to("gw", claim, ours, theirs, base))
    seven = individual[individual["number"] <= 7]
    printed = published.individual_average_tasks_1_7()
    for metric, label in (("kappa", "Cohen's kappa"), ("micro_f1", "micro-F1")):
        theirs = printed[metric]
        claim = f"Individual per-task scorers average {label} {theirs:.3f} over the UniMoE paper's Tasks 1-7"
        if not multilabel or not set(seven.index) <= set(per.index):
            out.append(claims.not_tested("moe", claim, f"{theirs:.3f}", "needs the papers' nine multi-label tasks"))
            continue
        note = base + "; tasks mapped by the UniMoE paper's own numbering; our value is the plain mean over them"
        own_mean = float(seven[metric].mean())
        if abs(own_mean - theirs) > 0.0005:
            note += f"; the paper's own per-task values average {own_mean:.3f}, not the {theirs:.3f} it prints"
        if synthetic:
            out.append(claims.close_to("moe", claim, float(per.loc[seven.index, metric].mean()), theirs, note))
        else:
            out.append(measured(claim, "moe", theirs, metric, list(seven.index), "mean", note))
    out.append(_task_by_task_claim(per, individual, known, multilabel, synthetic, base, scorers, tasks,
                                   n_resamples, seed))
    return out


def _task_by_task_claim(per, individual, known, multilabel, synthetic, base, scorers, tasks, n_resamples, seed):
    """The UniMoE paper's per-task micro-F1, task by task: by construction on the synthetic benchmark
    (share of tasks within the band), else each task's interval against its band, all of them needed."""
    from .. import claims, verdicts
    from ..paired_metrics import MICRO_F1, pair

    claim = "Individual per-task scorers' micro-F1, task by task (UniMoE Tables 3 and 5)"
    band = claims.HELD_WITHIN
    if not known or not multilabel:
        return claims.not_tested("moe", claim, "9 tasks", "needs the papers' nine multi-label tasks")
    if synthetic:
        gaps = (per.loc[known, "micro_f1"] - individual.loc[known, "micro_f1"]).abs()
        n_ok = int((gaps <= band + 1e-12).sum())
        return claims.by_construction("moe", claim, f"{len(known)} tasks", f"{n_ok} of {len(known)} within ±{band:g}",
                                      claims.verdict_share(n_ok, len(known)),
                                      f"{base}; held if every task is within ±{band:g}, partly if at least half are; "
                                      f"largest gap {gaps.max():.3f} ({gaps.idxmax()})",
                                      test=f"closeness of each task's micro-F1 to the paper's (±{band:g})")
    each = []
    for t in known:
        y, p = tasks[t].test.labels, scorers[t].predict(tasks[t].test)
        theirs = float(individual.loc[t, "micro_f1"])
        each.append(verdicts.figure_band(pair(MICRO_F1, (y, p, p)), theirs - band, theirs + band, n_resamples, seed))
    held = sum(v.verdict == verdicts.HELD for v in each)
    outside = sum(v.verdict == verdicts.NOT_HELD for v in each)
    verdict = verdicts.HELD if held == len(each) else verdicts.NOT_HELD if outside else verdicts.INCONCLUSIVE
    n = sum(v.n for v in each)
    summary = verdicts.Verdict(verdict, float(np.mean([v.effect for v in each])), float("nan"), float("nan"), n,
                               f"each task's 95% bootstrap interval of micro-F1 ({n_resamples} resamples, seed {seed}) "
                               f"against the paper's figure ± {band:g}; held when all {len(each)} lie inside, not "
                               "held when one lies wholly outside", n_text=f"{n} responses, {len(each)} tasks")
    return claims.judged("moe", claim, f"{len(known)} tasks", summary, base,
                         our_value=f"{held} of {len(each)} inside, {outside} outside")
