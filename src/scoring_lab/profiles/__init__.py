"""Run profiles (`smoke`, `default`, `paper`) as data.

A profile is a YAML file in ``scoring_lab/profiles/`` (or any path to one), read
into typed dataclasses. Code asks the profile for settings; it never branches
on the profile's name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path

import yaml

PROFILE_NAMES = ("smoke", "default", "paper")
SOURCES = ("synthetic", "pasta-csv", "asap-sas")


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
class Profile:
    name: str
    description: str
    data: DataSettings

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
    unknown = set(raw) - {"name", "description", "data"}
    if unknown:
        raise ProfileError(f"{where}: unknown section(s) {sorted(unknown)}")
    data_raw = dict(raw.get("data") or {})
    data_raw.update({k: v for k, v in data_overrides.items() if v is not None})
    return Profile(
        name=raw.get("name", path.stem),
        description=raw.get("description", ""),
        data=_section(DataSettings, data_raw, f"{where}, section data"),
    )
