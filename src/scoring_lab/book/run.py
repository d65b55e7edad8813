"""What a chapter's first cell calls: one object holding a run's settings and outputs.

``run = setup("data", profile="default", source="synthetic", path=None, seed=0)``
loads the profile, loads the tasks once, and writes the chapter's tables and
figures under ``results/<profile>/<chapter>/`` (``results/<profile>-<source>/...``
when the data source is not the profile's own) with a ``run.json`` beside them
saying which profile, data and seed produced them.
"""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import pandas as pd

from .. import __version__
from ..data import Task, load_tasks
from ..paths import RESULTS_ENV, project_root, results_root, results_tag  # noqa: F401 (re-exported)
from ..profiles import Profile, load_profile


@dataclass
class Run:
    chapter: str
    profile: Profile
    source: str
    path: str | None
    seed: int
    results_dir: Path
    options: dict = field(default_factory=dict)  # the loader's own options (column names, view, ...)
    saved: list[Path] = field(default_factory=list)
    _scorers: dict | None = field(default=None, repr=False)

    @cached_property
    def tasks(self) -> dict[str, Task]:
        """The run's tasks, loaded once."""
        d = self.profile.data
        return load_tasks(self.source, self.path, seed=self.seed, val_fraction=d.val_fraction,
                          scale=d.scale, difficulty=d.difficulty, **self.options)

    @cached_property
    def cache(self):
        """The artifact cache (``$SCORING_LAB_CACHE`` or ``.cache/scoring-lab`` at the project root)."""
        from ..models.cache import ArtifactCache

        return ArtifactCache()

    def scorers(self, progress: bool = True, **changes):
        """One fine-tuned scorer per task with the profile's training settings: trained once, then cached.

        ``changes`` replace training settings (``run.scorers(multiclass_head="cumulative")``): those
        scorers are cached under their own settings, and the profile's own are left as they are."""
        from ..models.per_task import get_scorers

        if changes:
            settings = replace(self.profile.train, **changes)
            if settings != self.profile.train:
                return get_scorers(self.tasks, settings, self.seed, self.cache, progress)
        if self._scorers is None:
            self._scorers = get_scorers(self.tasks, self.profile.train, self.seed, self.cache, progress)
        return self._scorers

    def provenance(self) -> dict:
        return {
            "chapter": self.chapter,
            "profile": self.profile.to_dict(),
            "source": self.source,
            "path": self.path,
            "options": self.options,
            "seed": self.seed,
            "scoring_lab_version": __version__,
            "python": platform.python_version(),
        }

    def _out(self, filename: str) -> Path:
        self.results_dir.mkdir(parents=True, exist_ok=True)
        (self.results_dir / "run.json").write_text(json.dumps(self.provenance(), indent=2) + "\n")
        path = self.results_dir / filename
        self.saved.append(path)
        return path

    def save_table(self, name: str, table: pd.DataFrame, index: bool = False) -> pd.DataFrame:
        """Write ``table`` to ``<results_dir>/<name>.csv`` and return it unchanged."""
        table.to_csv(self._out(f"{name}.csv"), index=index)
        return table

    def save_claims(self, claims: list) -> pd.DataFrame:
        """Write the chapter's ``claims.csv`` (a list of :class:`scoring_lab.claims.Claim`) and return it."""
        from ..claims import claims_table

        return self.save_table("claims", claims_table(claims))

    def save_figure(self, name: str, fig, dpi: int = 150):
        """Write a matplotlib figure to ``<results_dir>/<name>.png`` and return it."""
        fig.savefig(self._out(f"{name}.png"), dpi=dpi, bbox_inches="tight")
        return fig


def setup(chapter: str, profile: str | Path = "default", source: str | None = None,
          path: str | Path | None = None, seed: int = 0, options: dict | None = None) -> Run:
    """Start a chapter's run. ``source=None`` takes the profile's data source; ``options`` go to
    the source's loader (:func:`scoring_lab.data.load_tasks`), e.g. ``{"text_column": "answer"}``
    for ``csv`` or ``{"view": "holistic"}`` for ``synthetic``."""
    prof = load_profile(profile)
    src = source or prof.data.source
    options = dict(options or {})
    results_dir = results_root() / results_tag(prof.name, src, prof.data.source, options) / chapter
    return Run(chapter=chapter, profile=prof, source=src, path=None if path in (None, "") else str(path),
               seed=int(seed), results_dir=results_dir, options=options)
