"""Claims as data: which of a paper's claims held here, computed from a chapter's own results.

Every chapter writes ``results/<profile>/<chapter>/claims.csv`` with the columns
:data:`COLUMNS`; ``verdict`` is one of :data:`VERDICTS` and always comes from a
function of this module applied to measured values, never typed by hand. The
"Claims tested" page gathers every ``claims.csv`` with :func:`gather`.

How close is close: :func:`verdict_close` calls a measured value ``held`` when it
lies within ``held`` of the paper's (default 0.05, absolute), ``partly`` within
``partly`` (default 0.10), else ``not held``. These bands were fixed once for the
book, as round numbers, and are printed beside every verdict that uses them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .errors import DataError

VERDICTS = ("held", "partly", "not held", "not tested")
COLUMNS = ["paper", "claim", "paper_value", "our_value", "verdict", "note"]
HELD_WITHIN = 0.05
PARTLY_WITHIN = 0.10
# A claim whose note starts so is measured in wall-clock time: its value and verdict vary from run
# to run, and the determinism check (:mod:`scoring_lab.book.reproduce`) leaves them out.
WALL_CLOCK_NOTE = "wall-clock"

# The four papers by the short names chapters use, as the claims page shows them.
PAPERS = {
    "kd": "Latif et al. 2024: knowledge distillation into LSTM students",
    "gw": "Fang et al. 2025: GW-SMM model merging",
    "moe": "Fang et al. 2025: UniMoE multi-task mixture of experts",
    "irt": "MERGE³ 2025: IRT fitness estimators for evolutionary merging",
}


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, the paper's figure, ours, and the verdict computed from them."""

    paper: str
    claim: str
    paper_value: str
    our_value: str
    verdict: str
    note: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")
        if self.paper not in PAPERS:
            raise ValueError(f"paper {self.paper!r} is not one of {', '.join(PAPERS)}")


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def verdict_close(ours: float | None, theirs: float, held: float = HELD_WITHIN, partly: float = PARTLY_WITHIN) -> str:
    """``held`` if ``|ours - theirs| <= held``, ``partly`` if ``<= partly``, else ``not held``;
    ``not tested`` when there is no measured value."""
    if ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return "not tested"
    gap = abs(float(ours) - float(theirs))
    return "held" if gap <= held + 1e-12 else "partly" if gap <= partly + 1e-12 else "not held"


def verdict_share(n_ok: int, n: int) -> str:
    """``held`` if all ``n`` cases pass, ``partly`` if at least half do, else ``not held``
    (``not tested`` when there are none)."""
    if n == 0:
        return "not tested"
    return "held" if n_ok == n else "partly" if 2 * n_ok >= n else "not held"


def close_to(paper: str, claim: str, ours: float | None, theirs: float, note: str = "", digits: int = 3,
             held: float = HELD_WITHIN, partly: float = PARTLY_WITHIN) -> Claim:
    """A claim that a figure is about ``theirs``, judged by :func:`verdict_close`."""
    band = f"held within ±{held:g}, partly within ±{partly:g}"
    return Claim(paper, claim, _fmt(theirs, digits), _fmt(ours, digits), verdict_close(ours, theirs, held, partly),
                 f"{note} ({band})" if note else band)


def not_tested(paper: str, claim: str, paper_value: str, why: str) -> Claim:
    """A claim this run cannot test, and why."""
    return Claim(paper, claim, paper_value, "n/a", "not tested", why)


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    """The claims as a table with :data:`COLUMNS`."""
    return pd.DataFrame([asdict(c) for c in claims], columns=COLUMNS)


def read_claims(path: str | Path) -> pd.DataFrame:
    """A ``claims.csv``, checked: its columns, a known paper and verdict on every row."""
    path = Path(path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}", file=path, column=missing[0])
    for i, row in table.iterrows():
        if row["verdict"] not in VERDICTS:
            raise DataError(f"verdict {row['verdict']!r} is not one of {', '.join(VERDICTS)}", file=path,
                            row=i + 1, column="verdict")
        if row["paper"] not in PAPERS:
            raise DataError(f"paper {row['paper']!r} is not one of {', '.join(PAPERS)}", file=path,
                            row=i + 1, column="paper")
    return table[COLUMNS]


def gather(results_dir: str | Path) -> pd.DataFrame:
    """Every ``<chapter>/claims.csv`` under one profile's results folder, grouped by paper
    (in :data:`PAPERS` order): columns ``paper_title, chapter`` and :data:`COLUMNS`."""
    results_dir = Path(results_dir)
    frames = []
    for path in sorted(results_dir.glob("*/claims.csv")):
        t = read_claims(path)
        t.insert(0, "chapter", path.parent.name)
        frames.append(t)
    out = (pd.concat(frames, ignore_index=True) if frames
           else pd.DataFrame(columns=["chapter", *COLUMNS]))
    out.insert(0, "paper_title", out["paper"].map(PAPERS))
    order = {p: i for i, p in enumerate(PAPERS)}
    out = out.assign(_o=out["paper"].map(order)).sort_values(["_o", "chapter"], kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per paper, how many claims got each verdict (columns in :data:`VERDICTS` order)."""
    counts = pd.crosstab(table["paper_title"], table["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    titles = [PAPERS[p] for p in PAPERS if PAPERS[p] in counts.index]
    return counts.reindex(titles).rename_axis(index="paper", columns=None).reset_index()


VERDICT_COLOURS = {"held": "#d4edda", "partly": "#fff3cd", "not held": "#f8d7da", "not tested": "#e2e3e5"}


def styled_claims(table: pd.DataFrame):
    """The claims as a Styler, the verdict beside each claim, its cell coloured (green held, amber
    partly, red not held, grey not tested) and spelled out, so the colour is never the only cue."""
    shown = table[["claim", "verdict", "paper_value", "our_value", "chapter", "note"]].rename(
        columns={"paper_value": "paper's value", "our_value": "our value"})
    sty = shown.style.hide(axis="index")
    sty = sty.map(lambda v: f"background-color: {VERDICT_COLOURS.get(v, 'white')}; font-weight: bold; "
                            "white-space: nowrap", subset=["verdict"])
    sty = sty.set_properties(subset=["claim"], **{"min-width": "13em", "white-space": "normal", "text-align": "left"})
    sty = sty.set_properties(subset=["note"], **{"min-width": "12em", "white-space": "normal", "text-align": "left",
                                                 "font-size": "85%"})
    return sty.set_table_styles([{"selector": "td, th", "props": [("padding", "2px 8px"),
                                                                  ("vertical-align", "top")]}])


def styled_by_paper(table: pd.DataFrame) -> list[tuple[str, object]]:
    """``(paper title, styled claims)`` per paper, in :data:`PAPERS` order (see :func:`gather`)."""
    return [(title, styled_claims(group)) for title, group in table.groupby("paper_title", sort=False)]
