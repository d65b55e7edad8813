"""The synthetic benchmark: nine tasks shaped like the papers' PASTA data.

The content (scenarios, questions, rubrics, concept phrase banks, slot fillers) is
data in ``benchmark/*.yaml``; this module only composes responses from it.

How one response is made (task ``T``, student ``i``)
----------------------------------------------------
1. ability ``theta_i ~ N(0, 1)``; rubric dimension ``l`` (difficulty ``b_l``,
   discrimination ``a_l``, optional ``boost`` from the dimensions in ``depends_on``) is
   met with probability ``sigmoid(a_l (theta_i - b_l) + boost_l * mean(met[depends_on]))``.
2. text: for each met dimension one paraphrase of its concept (train pool; in the
   test split, with probability ``heldout_share``, the held-out pool that no train
   response ever uses); for each unmet dimension, with probability
   ``misconception_rate``, a misconception / negation / partial statement using the
   same words; 0-3 fillers (hedges, restating the question); random order and
   joins; typos (swap, drop, double a letter) in a share ``typo_rate`` of words.
3. off-topic and near-empty answers (share ``offtopic_rate``) replace the text and
   earn no labels (rater noise is not applied to them).
4. rater noise: each label of an on-topic response flips with probability
   ``rater_noise``, after the text is composed.
5. holistic score (``n_classes = 4``) from the final labels: 0 if no dimension is
   met, 3 if all are, else 1 if at most half are, else 2.

Seeding: every task draws from its own ``SeedSequence(seed, spawn_key=(crc32(name),))``
(train, test and the validation carve from separate children), so a task's data
does not depend on which other tasks are generated.

Families (the ground truth a merge plan should recover) share concepts, hence phrase
banks; task-specific slots (gas names, liquids, products) keep tasks distinct.
"""
from __future__ import annotations

import math
import re
import zlib
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from .splits import carve_validation
from ..errors import DataError
from .task import Split, Task

__all__ = [
    "TASK_NAMES",
    "N_CLASSES",
    "DifficultyKnobs",
    "task_families",
    "family_of",
    "generate_benchmark",
    "holistic_scores",
]

TASK_NAMES: tuple[str, ...] = (
    "anna_vs_carla",
    "breaking_down_hydrogen_peroxide",
    "carlos_javier_atomic_model",
    "dry_ice_model",
    "gas_filled_balloons",
    "layers_in_test_tube",
    "model_for_making_water",
    "namis_careful_experiment",
    "natural_sugar",
)
N_CLASSES = 4
LABEL_PROBABILITY = "label_probability"   # task.meta key: response id -> (L,) pre-noise label probabilities
BENCHMARK_DIR = Path(__file__).parent / "benchmark"
_MIN_TRAIN, _MIN_TEST = 40, 12


# ----------------------------------------------------------------------------- knobs
@dataclass(frozen=True)
class DifficultyKnobs:
    """The rates one ``difficulty`` level in [0, 1] maps to (each overridable).

    ``from_level(d)`` gives (d = 0 / 0.5 / 1):
      heldout_share       0.10 + 0.40 d   (0.10 / 0.30 / 0.50)  share of met dims in test phrased with held-out paraphrases
      misconception_rate  0.10 + 0.50 d   (0.10 / 0.35 / 0.60)  chance an unmet dim gets a misconception / negation
      typo_rate           0.01 + 0.06 d   (0.01 / 0.04 / 0.07)  share of words with a typo
      offtopic_rate       0.02 + 0.06 d   (0.02 / 0.05 / 0.08)  share of off-topic or near-empty answers
      rater_noise         0.01 + 0.08 d   (0.01 / 0.05 / 0.09)  chance each label is flipped
    """

    heldout_share: float = 0.30
    misconception_rate: float = 0.35
    typo_rate: float = 0.04
    offtopic_rate: float = 0.05
    rater_noise: float = 0.05

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0):
                raise ValueError(f"DifficultyKnobs.{f.name} must be a rate in [0, 1], got {v!r}")

    @classmethod
    def from_level(cls, difficulty: float = 0.5, **overrides) -> "DifficultyKnobs":
        """The documented rates for ``difficulty`` in [0, 1], then ``overrides`` by name."""
        d = float(difficulty)
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {difficulty!r}")
        r = lambda x: round(x, 6)  # noqa: E731  (so from_level(0.5) == DifficultyKnobs())
        base = cls(
            heldout_share=r(0.10 + 0.40 * d),
            misconception_rate=r(0.10 + 0.50 * d),
            typo_rate=r(0.01 + 0.06 * d),
            offtopic_rate=r(0.02 + 0.06 * d),
            rater_noise=r(0.01 + 0.08 * d),
        )
        return base.with_overrides(**overrides)

    def with_overrides(self, **overrides) -> "DifficultyKnobs":
        names = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown difficulty knob(s) {unknown}; valid: {sorted(names)}")
        return replace(self, **overrides)

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


# ----------------------------------------------------------------------------- content
_SLOT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def _compile(template: str) -> tuple:
    """'a {x} b' -> ('a ', ('x',), ' b'): literals as str, slots as 1-tuples."""
    parts, pos = [], 0
    for m in _SLOT.finditer(template):
        if m.start() > pos:
            parts.append(template[pos:m.start()])
        parts.append((m.group(1),))
        pos = m.end()
    if pos < len(template):
        parts.append(template[pos:])
    return tuple(parts)


def _slots_in(template: str) -> set[str]:
    return set(_SLOT.findall(template))


@dataclass(frozen=True)
class _Dim:
    id: str
    perspective: str
    description: str
    concept: str
    b: float
    a: float
    depends_on: tuple[int, ...]
    boost: float


@dataclass(frozen=True)
class _TaskSpec:
    name: str
    family: str
    scenario: str
    question: str
    n_train: int
    n_test: int
    dims: tuple[_Dim, ...]
    pools: dict          # concept -> {"train": [...], "heldout": [...], "misconceptions": [...]} compiled
    slots: dict          # slot name -> list of compiled templates (task over global)
    fillers: tuple       # compiled
    off_topic: tuple     # plain strings


def _read_yaml(path: Path) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=loader)
    except (OSError, yaml.YAMLError) as err:
        raise DataError(f"cannot read benchmark content: {err}", file=path) from err
    if not isinstance(data, dict):
        raise DataError("expected a mapping at the top level", file=path)
    return data


def _strings(value, path: Path, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
        raise DataError(f"{where} must be a non-empty list of non-empty strings", file=path)
    return value


@lru_cache(maxsize=1)
def _bank() -> dict:
    """Parse and validate every YAML file once: {'families', 'tasks': {name: _TaskSpec}, 'raw'}."""
    shared_path = BENCHMARK_DIR / "concepts.yaml"
    shared = _read_yaml(shared_path)
    families = shared.get("families")
    if not isinstance(families, dict) or not families:
        raise DataError("'families' must map family name -> description", file=shared_path)
    g_slots = {k: _strings(v, shared_path, f"slots.{k}") for k, v in (shared.get("slots") or {}).items()}
    g_fillers = _strings(shared.get("fillers"), shared_path, "fillers")
    off_topic = _strings(shared.get("off_topic"), shared_path, "off_topic")
    shared_concepts = shared.get("concepts") or {}
    raw_concepts: dict[str, tuple[dict, Path]] = {}
    for cname, c in shared_concepts.items():
        raw_concepts[cname] = (c, shared_path)
        if c.get("family") not in families:
            raise DataError(f"concept {cname!r} names unknown family {c.get('family')!r}", file=shared_path)

    specs: dict[str, _TaskSpec] = {}
    raw_tasks: dict[str, dict] = {}
    for name in TASK_NAMES:
        path = BENCHMARK_DIR / f"{name}.yaml"
        t = _read_yaml(path)
        raw_tasks[name] = t
        if t.get("name") != name:
            raise DataError(f"'name' must be {name!r}, got {t.get('name')!r}", file=path)
        family = t.get("family")
        if family not in families:
            raise DataError(f"unknown family {family!r}; valid: {sorted(families)}", file=path)
        concepts = dict(raw_concepts)
        for cname, c in (t.get("concepts") or {}).items():
            if cname in concepts:
                raise DataError(f"task concept {cname!r} shadows a shared concept", file=path)
            concepts[cname] = (c, path)
        slots = dict(g_slots)
        slots.update({k: _strings(v, path, f"slots.{k}") for k, v in (t.get("slots") or {}).items()})

        rubric = t.get("rubric")
        if not isinstance(rubric, list) or not rubric:
            raise DataError("'rubric' must be a non-empty list", file=path)
        ids = [str(r.get("id")) for r in rubric]
        if ids != [f"E{i + 1}" for i in range(len(rubric))]:
            raise DataError(f"rubric ids must be E1..E{len(rubric)} in order, got {ids}", file=path)
        used, dims, pools = set(), [], {}
        for r in rubric:
            cname = r.get("concept")
            if cname not in concepts:
                raise DataError(f"rubric {r['id']} names unknown concept {cname!r}", file=path)
            if cname in used:
                raise DataError(f"concept {cname!r} is used by two rubric dimensions", file=path)
            used.add(cname)
            c, cpath = concepts[cname]
            if cpath == shared_path and c["family"] != family:
                raise DataError(f"rubric {r['id']} uses concept {cname!r} of family {c['family']!r}", file=path)
            pools[cname] = {k: [_compile(s) for s in _strings(c.get(k), cpath, f"concepts.{cname}.{k}")]
                            for k in ("train", "heldout", "misconceptions")}
            deps = tuple(ids.index(d) for d in (r.get("depends_on") or []) if d in ids)
            if len(deps) != len(r.get("depends_on") or []):
                raise DataError(f"rubric {r['id']} depends on an unknown dimension", file=path)
            dims.append(_Dim(id=r["id"], perspective=str(r["perspective"]), description=str(r["description"]),
                             concept=cname, b=float(r.get("b", 0.0)), a=float(r.get("a", 1.5)),
                             depends_on=deps, boost=float(r.get("boost", 0.0))))
        sizes = t.get("sizes") or {}
        if int(t.get("n_labels", -1)) != len(dims):
            raise DataError(f"n_labels {t.get('n_labels')} but the rubric has {len(dims)} dimensions", file=path)
        fillers = g_fillers + _strings(t.get("fillers"), path, "fillers")
        # every slot that can be reached must resolve
        todo = [s for cn in used for k in ("train", "heldout", "misconceptions")
                for s in concepts[cn][0][k]] + fillers
        seen: set[str] = set()
        while todo:
            for s in _slots_in(todo.pop()):
                if s not in slots:
                    raise DataError(f"slot {{{s}}} is used but not defined (task or concepts.yaml)", file=path)
                if s not in seen:
                    seen.add(s)
                    todo.extend(slots[s])
        specs[name] = _TaskSpec(
            name=name, family=family, scenario=str(t["scenario"]).strip(), question=str(t["question"]).strip(),
            n_train=int(sizes["train"]), n_test=int(sizes["test"]), dims=tuple(dims), pools=pools,
            slots={k: [_compile(v) for v in vals] for k, vals in slots.items()},
            fillers=tuple(_compile(f) for f in fillers), off_topic=tuple(off_topic),
        )
    return {"families": dict(families), "tasks": specs, "raw": raw_tasks, "shared": shared}


def task_families() -> dict[str, list[str]]:
    """Family name -> its task names (table order): the ground truth a merge plan should recover."""
    bank = _bank()
    out = {f: [] for f in bank["families"]}
    for name in TASK_NAMES:
        out[bank["tasks"][name].family].append(name)
    return out


def _check_names(names) -> list[str]:
    bad = [n for n in names if n not in TASK_NAMES]
    if bad:
        raise DataError(f"unknown synthetic task(s) {', '.join(map(repr, bad))}; valid tasks: {', '.join(TASK_NAMES)}")
    return list(names)


def family_of(task_name: str) -> str:
    """The family ``task_name`` belongs to."""
    _check_names([task_name])
    return _bank()["tasks"][task_name].family


# ----------------------------------------------------------------------------- drawing
class _Draw:
    """Uniform draws from ``rng`` in blocks (one numpy call per 4096 draws, so it is fast)."""

    def __init__(self, rng: np.random.Generator, block: int = 4096):
        self.rng, self.block = rng, block
        self.buf, self.i = rng.random(block), 0

    def u(self) -> float:
        if self.i == self.block:
            self.buf, self.i = self.rng.random(self.block), 0
        self.i += 1
        return float(self.buf[self.i - 1])

    def index(self, n: int) -> int:
        return min(int(self.u() * n), n - 1)

    def pick(self, seq):
        return seq[self.index(len(seq))]

    def shuffle(self, items: list) -> None:
        for j in range(len(items) - 1, 0, -1):
            k = self.index(j + 1)
            items[j], items[k] = items[k], items[j]


def _render(parts: tuple, slots: dict, draw: _Draw, depth: int = 0) -> str:
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif depth > 6:
            raise DataError(f"slot {{{p[0]}}} nests too deeply (a cycle?)")
        else:
            out.append(_render(draw.pick(slots[p[0]]), slots, draw, depth + 1))
    return "".join(out)


_JOINS = (". ", ". ", ". ", ". ", " ", ", ", " and ", ". also ", " so ", "\n")


def _typos(text: str, rate: float, draw: _Draw) -> str:
    if rate <= 0:
        return text
    words = text.split(" ")
    for j, w in enumerate(words):
        if len(w) >= 3 and w.isalpha() and draw.u() < rate:
            k, kind = draw.index(len(w) - 1), draw.u()
            if kind < 0.4:      # swap two neighbours
                w = w[:k] + w[k + 1] + w[k] + w[k + 2:]
            elif kind < 0.75:   # drop one
                w = w[:k] + w[k + 1:]
            else:               # double one
                w = w[:k] + w[k] + w[k:]
            words[j] = w
    return " ".join(words)


def _compose(spec: _TaskSpec, met: np.ndarray, split: str, knobs: DifficultyKnobs, draw: _Draw) -> str:
    slots = spec.slots
    sentences = []
    for dim, m in zip(spec.dims, met):
        pool = spec.pools[dim.concept]
        if m:
            bank = pool["heldout"] if split == "test" and draw.u() < knobs.heldout_share else pool["train"]
            sentences.append(_render(draw.pick(bank), slots, draw))
        elif draw.u() < knobs.misconception_rate:
            sentences.append(_render(draw.pick(pool["misconceptions"]), slots, draw))
    n_fill = (0, 0, 1, 1, 1, 2, 2, 3)[draw.index(8)]
    if not sentences:
        n_fill = max(n_fill, 1)
    for _ in range(n_fill):
        filler = _render(draw.pick(spec.fillers), slots, draw)
        if filler not in sentences:
            sentences.append(filler)
    draw.shuffle(sentences)
    capital = draw.u() < 0.25
    text = ""
    for j, s in enumerate(sentences):
        s = s.strip()
        if capital:
            s = s[:1].upper() + s[1:]
            s = re.sub(r"\bi\b", "I", s)
        text = s if j == 0 else text + draw.pick(_JOINS) + s
    if draw.u() < 0.4:
        text += "."
    return _typos(text, knobs.typo_rate, draw)


def holistic_scores(labels: np.ndarray) -> np.ndarray:
    """(n,) holistic class from (n, L) 0/1 labels: 0 none met, 3 all met, 1 at most half, else 2."""
    labels = np.asarray(labels)
    L = labels.shape[1]
    k = labels.sum(axis=1)
    return np.where(k == 0, 0, np.where(k == L, 3, np.where(k <= L / 2, 1, 2))).astype(np.int64)


def _generate_split(spec: _TaskSpec, n: int, split: str, knobs: DifficultyKnobs,
                    rng: np.random.Generator) -> tuple[Split, np.ndarray]:
    """The split, and (n, L) float the probability that each of its labels is 1 given what its text was
    composed from (the dimensions met, before rater noise): ``1 - rater_noise`` for a met dimension,
    ``rater_noise`` for an unmet one, 0 for every label of an off-topic answer (never noised)."""
    L = len(spec.dims)
    label_probability = np.zeros((n, L))
    theta = rng.standard_normal(n)
    draw = _Draw(rng)
    a = np.array([d.a for d in spec.dims])
    b = np.array([d.b for d in spec.dims])
    texts, labels = [], np.zeros((n, L), dtype=np.int8)
    order = sorted(range(L), key=lambda l: len(spec.dims[l].depends_on) > 0)  # independent dims first
    for i in range(n):
        met = np.zeros(L, dtype=bool)
        for l in order:
            d = spec.dims[l]
            z = a[l] * (theta[i] - b[l])
            if d.depends_on:
                z += d.boost * float(np.mean(met[list(d.depends_on)]))
            met[l] = draw.u() < 1.0 / (1.0 + math.exp(-z))
        if draw.u() < knobs.offtopic_rate:
            texts.append(draw.pick(spec.off_topic))
            continue
        texts.append(_compose(spec, met, split, knobs, draw))
        flip = np.array([draw.u() < knobs.rater_noise for _ in range(L)])
        labels[i] = met ^ flip
        label_probability[i] = np.where(met, 1.0 - knobs.rater_noise, knobs.rater_noise)
    ids = np.array([f"{spec.name}-{split}-{i:05d}" for i in range(n)], dtype=object)
    return (Split(ids=ids, texts=texts, labels=labels, scores=holistic_scores(labels), ability=theta),
            label_probability)


def _scaled(n: int, scale: float, floor: int) -> int:
    return max(floor, int(round(n * scale)))


def _generate_task(spec: _TaskSpec, seed: int, scale: float, difficulty: float, val_fraction: float, view: str,
                   knobs: DifficultyKnobs) -> Task:
    ss = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(spec.name.encode("utf-8")),))
    train_ss, test_ss, carve_ss = ss.spawn(3)
    full, full_probability = _generate_split(spec, _scaled(spec.n_train, scale, _MIN_TRAIN), "train", knobs,
                                             np.random.default_rng(train_ss))
    test, test_probability = _generate_split(spec, _scaled(spec.n_test, scale, _MIN_TEST), "test", knobs,
                                             np.random.default_rng(test_ss))
    train, val = carve_validation(full, val_fraction, int(carve_ss.generate_state(1)[0]))
    meta = {
        "source": "synthetic",
        "scenario": spec.scenario,
        "question": spec.question,
        "family": spec.family,
        "rubric": [{"id": d.id, "perspective": d.perspective, "description": d.description,
                    "concept": d.concept} for d in spec.dims],
        "seed": seed,
        "scale": scale,
        "difficulty": difficulty,
        "knobs": knobs.as_dict(),
        # response id -> (L,) probability of each label given the text's making, before rater noise: the
        # generator's own answer, an oracle teacher (scoring_lab.kd.oracle)
        LABEL_PROBABILITY: {str(i): p for s, ps in ((full, full_probability), (test, test_probability))
                            for i, p in zip(s.ids, ps)},
    }
    meta["view"] = view
    return Task(name=spec.name, kind="multilabel" if view == "multilabel" else "multiclass", train=train, val=val,
                test=test, label_names=[d.id for d in spec.dims], n_classes=N_CLASSES, meta=meta)


VIEWS = ("multilabel", "holistic")


def generate_benchmark(seed: int = 0, scale: float = 1.0, difficulty: float = 0.5, val_fraction: float = 0.1,
                       tasks=None, knobs=None, view: str = "multilabel") -> dict[str, Task]:
    """The synthetic benchmark: task name -> :class:`Task`, in table order.

    seed:       non-negative int; each task has its own stream derived from it.
    scale:      shrinks (or grows) every split; floors of 40 train and 12 test responses.
    difficulty: in [0, 1], mapped to rates by :meth:`DifficultyKnobs.from_level`.
    tasks:      subset of :data:`TASK_NAMES` (any order; output keeps table order).
    knobs:      a :class:`DifficultyKnobs` (used as is) or a dict of rates overriding
                those of ``difficulty``.
    view:       "multilabel" (the papers' analytic rubrics: kind multilabel) or "holistic" (the
                same responses as multi-class tasks scored 0-3 by the holistic score: an ordinal
                multi-class source). The labels are kept in both views.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not (isinstance(scale, (int, float)) and scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if knobs is None:
        knobs = DifficultyKnobs.from_level(difficulty)
    elif isinstance(knobs, dict):
        knobs = DifficultyKnobs.from_level(difficulty, **knobs)
    elif not isinstance(knobs, DifficultyKnobs):
        raise ValueError(f"knobs must be a DifficultyKnobs or a dict, got {type(knobs).__name__}")
    else:
        DifficultyKnobs.from_level(difficulty)  # still validate the level
    if isinstance(tasks, str):
        tasks = [tasks]
    wanted = set(_check_names(list(tasks))) if tasks is not None else set(TASK_NAMES)
    specs = _bank()["tasks"]
    return {name: _generate_task(specs[name], int(seed), float(scale), float(difficulty), val_fraction, view, knobs)
            for name in TASK_NAMES if name in wanted}
