"""Run profiles (`smoke`, `default`, `paper`) as data.

A profile is a YAML file in ``scoring_lab/profiles/`` (or any path to one), read
into typed dataclasses. Code asks the profile for settings; it never branches
on the profile's name.
"""
from __future__ import annotations

from dataclasses import asdict, field, fields, is_dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError, model_validator

from .settings import (ClaimSettings, DataSettings, GWChapterSettings, IRTChapterSettings, KDSettings,  # noqa: F401
                       LoraSettings, MoEChapterSettings, MultiTaskSettings, PROFILE_NAMES, ProfileError,
                       TrainSettings, checked, describe, with_changes)   # the sections callers name through the package

SECTIONS = ("data", "train", "kd", "gw", "moe", "irt", "claims")


@checked("")
class Profile:
    """A whole profile: its sections, checked as :mod:`.settings` declares them, and the notes."""

    name: str
    description: str = ""
    data: DataSettings = DataSettings()
    train: TrainSettings = TrainSettings()
    kd: KDSettings = KDSettings()
    gw: GWChapterSettings = GWChapterSettings()
    moe: MoEChapterSettings = MoEChapterSettings()
    irt: IRTChapterSettings = IRTChapterSettings()
    claims: ClaimSettings = ClaimSettings()
    notes: dict = field(default_factory=dict)  # setting -> why this profile chose it (shown in the book)

    @model_validator(mode="after")
    def _teachers_fit_the_train_settings(self):
        """The teachers' changes are checked with the train settings they change (lora and
        trainable_layers together, say), here rather than when a chapter first trains one."""
        for key, changes in (("kd.teacher", self.kd.teacher), ("kd.small_transformer", self.kd.small_transformer),
                             ("moe.teacher", self.moe.teacher)):
            with_changes(self.train, changes, key)
        return self

    def to_dict(self) -> dict:
        return asdict(self)


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
    """Read a profile; ``data_overrides`` replace keys of its ``data`` section.

    Every value is checked and coerced by the sections' field types (:mod:`.settings`); a bad one
    raises :class:`ProfileError` naming the file and the dotted key."""
    path = profile_path(name_or_path)
    where = f"profile {path}"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ProfileError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: a profile is a mapping of sections ({', '.join(SECTIONS)}), "
                           f"got {type(raw).__name__}")
    raw = {k: {} if k in SECTIONS and v is None else v for k, v in raw.items()}   # an empty section: defaults
    raw.setdefault("name", path.stem)
    overrides = {k: v for k, v in data_overrides.items() if v is not None}
    if overrides and isinstance(raw.get("data", {}), dict):
        raw["data"] = {**raw.get("data", {}), **overrides}
    try:
        return _PROFILE.validate_python(raw)
    except ValidationError as e:
        raise ProfileError(describe(e, root=Profile, where=where)) from None


_PROFILE = TypeAdapter(Profile)


def teacher_settings(profile: Profile) -> TrainSettings:
    """The KD teachers' train settings: the profile's, with ``kd.teacher``'s changes."""
    return with_changes(profile.train, profile.kd.teacher, "kd.teacher")


def small_transformer_settings(profile: Profile) -> TrainSettings:
    """The TinyBERT-role baseline's train settings: the profile's, with ``kd.small_transformer``'s changes."""
    return with_changes(profile.train, profile.kd.small_transformer, "kd.small_transformer")


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
