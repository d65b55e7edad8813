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

from .settings import (ClaimSettings, DataSettings, GWChapterSettings, IRTChapterSettings, KDSettings,  # noqa: F401
                       LoraSettings, MoEChapterSettings, MultiTaskSettings, PROFILE_NAMES, ProfileError,
                       TrainSettings)   # the sections callers name through the package


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
    claims: ClaimSettings = ClaimSettings()
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
    unknown = set(raw) - {"name", "description", "data", "train", "kd", "gw", "moe", "irt", "claims", "notes"}
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
        claims=_section(ClaimSettings, raw.get("claims"), f"{where}, section claims"),
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
