"""Claims as data: which of a paper's claims held here, computed from a chapter's own results.

Every chapter writes ``results/<profile>/<chapter>/claims.csv`` with the columns :data:`COLUMNS`;
``verdict`` is one of :data:`VERDICTS` and always comes from a function applied to measured values,
never typed by hand: for a measured claim, a :class:`scoring_lab.verdicts.Verdict` (a paired test over
test responses with its effect, 95% interval, n and test, turned into a row by :func:`judged`).

``basis`` says what a claim rests on: ``measured`` (it depends on what was trained or observed) or
``by construction`` (it follows from settings or arithmetic: a parameter ratio, a storage saving, a
figure the synthetic benchmark was calibrated to reach). A by-construction claim still shows its
figure and band but is never counted as evidence (:func:`verdict_counts`).

The "Claims tested" page gathers every ``claims.csv`` with :func:`gather`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .errors import DataError
from .verdicts import BY_CONSTRUCTION, INCONCLUSIVE, MEASURED, Verdict

VERDICTS = ("held", "partly", "inconclusive", "not held", "not tested")
BASES = (MEASURED, BY_CONSTRUCTION)
COLUMNS = ["paper", "claim", "paper_value", "our_value", "verdict", "basis", "effect", "ci_low", "ci_high", "n",
           "test", "note"]
NUMERIC = ("effect", "ci_low", "ci_high")
# Bands of a by-construction figure against the paper's (absolute): round numbers fixed once for the
# book and printed beside every verdict that uses them.
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
    """One claim of a paper, the paper's figure, ours, the verdict and what it rests on: ``basis``,
    the ``effect`` with its 95% interval [``ci_low``, ``ci_high``] (NaN where there is none), ``n``
    (responses, seeds, in words) and the ``test``."""

    paper: str
    claim: str
    paper_value: str
    our_value: str
    verdict: str
    note: str = ""
    basis: str = MEASURED
    effect: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    n: str = ""
    test: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")
        if self.paper not in PAPERS:
            raise ValueError(f"paper {self.paper!r} is not one of {', '.join(PAPERS)}")
        if self.basis not in BASES:
            raise ValueError(f"basis {self.basis!r} is not one of {', '.join(BASES)}")
        if self.basis == MEASURED and self.verdict != "not tested" and not (self.test and self.n):
            raise ValueError(f"measured claim {self.claim!r} has a verdict but no test or n: a verdict needs "
                             "the test it came from")


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def interval_text(v: Verdict, digits: int = 3, signed: bool = True) -> str:
    """``+0.012 [-0.004, +0.027]``: an effect and its interval as a reader sees them."""
    f = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    if math.isnan(v.ci_low):
        return f.format(v.effect)
    return f"{f.format(v.effect)} [{f.format(v.ci_low)}, {f.format(v.ci_high)}]"


def judged(paper: str, claim: str, paper_value: str, v: Verdict, note: str = "", our_value: str | None = None,
           basis: str = MEASURED, digits: int = 3, signed: bool = True) -> Claim:
    """A claim judged by a :class:`~scoring_lab.verdicts.Verdict`: its verdict, effect, interval, n and
    test in the row; ``our_value`` defaults to the effect and its interval; an ``inconclusive`` verdict
    says in the note the smallest effect the data could have detected."""
    extra = []
    if v.verdict == INCONCLUSIVE and v.detectable is not None:
        extra.append(f"the smallest effect these responses could detect (80% power) is about ±{v.detectable:.3f}")
    text = "; ".join([x for x in (note, *extra) if x])
    return Claim(paper, claim, paper_value, interval_text(v, digits, signed) if our_value is None else our_value,
                 v.verdict, text, basis, float(v.effect), float(v.ci_low), float(v.ci_high), v.n_text, v.test)


def verdict_close(ours: float | None, theirs: float, held: float = HELD_WITHIN, partly: float = PARTLY_WITHIN) -> str:
    """``held`` if ``|ours - theirs| <= held``, ``partly`` if ``<= partly``, else ``not held``;
    ``not tested`` when there is no measured value. Only for by-construction figures: a measured
    claim is judged on its interval (:mod:`scoring_lab.verdicts`)."""
    if ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return "not tested"
    gap = abs(float(ours) - float(theirs))
    return "held" if gap <= held + 1e-12 else "partly" if gap <= partly + 1e-12 else "not held"


def by_construction(paper: str, claim: str, paper_value: str, our_value: str, verdict: str, why: str,
                    effect: float = math.nan, test: str = "") -> Claim:
    """A claim whose figure follows from settings or arithmetic (``why``): shown with the verdict of
    its band, never counted as evidence."""
    return Claim(paper, claim, paper_value, our_value, verdict, why, BY_CONSTRUCTION, float(effect), math.nan,
                 math.nan, "", test or "none: follows from the settings")


def close_to(paper: str, claim: str, ours: float | None, theirs: float, note: str = "", digits: int = 3,
             held: float = HELD_WITHIN, partly: float = PARTLY_WITHIN) -> Claim:
    """A by-construction figure said to be about ``theirs``, judged by :func:`verdict_close`."""
    band = f"held within ±{held:g}, partly within ±{partly:g}"
    return by_construction(paper, claim, _fmt(theirs, digits), _fmt(ours, digits),
                           verdict_close(ours, theirs, held, partly), f"{note} ({band})" if note else band,
                           math.nan if ours is None else float(ours), f"closeness to the paper's figure ({band})")


def not_tested(paper: str, claim: str, paper_value: str, why: str, basis: str = MEASURED) -> Claim:
    """A claim this run cannot test, and why."""
    return Claim(paper, claim, paper_value, "n/a", "not tested", why, basis)


def verdict_share(n_ok: int, n: int) -> str:
    """``held`` if all ``n`` checks pass, ``partly`` if at least half do, else ``not held`` (``not
    tested`` when there are none). Only for checks of fact with no sampling error (a data set's shape
    against a paper's table): a measured comparison goes through :func:`scoring_lab.verdicts.compare_all`."""
    if n == 0:
        return "not tested"
    return "held" if n_ok == n else "partly" if 2 * n_ok >= n else "not held"


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    """The claims as a table with :data:`COLUMNS` (effects and bounds to 6 decimals)."""
    return pd.DataFrame([asdict(c) for c in claims], columns=COLUMNS).round({c: 6 for c in NUMERIC})


def _check_row(row: pd.Series, i: int, path: Path) -> None:
    def fail(message: str, column: str):
        raise DataError(message, file=path, row=i + 1, column=column)

    if row["verdict"] not in VERDICTS:
        fail(f"verdict {row['verdict']!r} is not one of {', '.join(VERDICTS)}", "verdict")
    if row["paper"] not in PAPERS:
        fail(f"paper {row['paper']!r} is not one of {', '.join(PAPERS)}", "paper")
    if row["basis"] not in BASES:
        fail(f"basis {row['basis']!r} is not one of {', '.join(BASES)}", "basis")
    values = {}
    for column in NUMERIC:
        text = row[column].strip()
        try:
            values[column] = float(text) if text else math.nan
        except ValueError:
            fail(f"{column} {text!r} is not a number", column)
    if values["ci_low"] > values["ci_high"]:
        fail(f"the interval [{values['ci_low']}, {values['ci_high']}] runs backwards", "ci_low")
    if row["basis"] == MEASURED and row["verdict"] != "not tested":
        for column in ("test", "n"):
            if not row[column].strip():
                fail(f"a measured claim with a verdict needs its {column}", column)


def read_claims(path: str | Path) -> pd.DataFrame:
    """A ``claims.csv``, checked: its columns; on every row a known paper, verdict and basis, numbers
    where numbers go, an interval that runs forwards, and a test and n behind every measured verdict."""
    path = Path(path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}", file=path, column=missing[0])
    for i, row in table.iterrows():
        _check_row(row, i, path)
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
    """Per paper, how many measured claims got each verdict (columns in :data:`VERDICTS` order), and
    the by-construction claims apart in a last column: they are shown, never counted as evidence."""
    measured = table[table["basis"] == MEASURED]
    counts = pd.crosstab(measured["paper_title"], measured["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    built = table[table["basis"] == BY_CONSTRUCTION].groupby("paper_title").size()
    titles = [PAPERS[p] for p in PAPERS if PAPERS[p] in set(table["paper_title"])]
    counts = counts.reindex(titles, fill_value=0)
    counts[BY_CONSTRUCTION] = built.reindex(titles, fill_value=0).astype(int)
    return counts.rename_axis(index="paper", columns=None).reset_index()


CHAPTER_COLUMNS = ["claim", "verdict", "basis", "paper_value", "our_value", "n", "test", "note"]


def chapter_view(table: pd.DataFrame) -> pd.DataFrame:
    """A chapter's claims as its page shows them: :data:`CHAPTER_COLUMNS` (our value carries the
    interval; the raw effect and bounds stay in ``claims.csv``)."""
    return table[CHAPTER_COLUMNS].rename(columns={"paper_value": "paper's value", "our_value": "our value"})


VERDICT_COLOURS = {"held": "#d4edda", "partly": "#fff3cd", "inconclusive": "#e8e4f5", "not held": "#f8d7da",
                   "not tested": "#e2e3e5"}


def _shown_number(x: str) -> str:
    try:
        return f"{float(x):+.3f}" if x.strip() else ""
    except ValueError:
        return x


def styled_claims(table: pd.DataFrame):
    """The claims as a Styler: the verdict beside each claim, its cell coloured (green held, amber
    partly, lilac inconclusive, red not held, grey not tested) and spelled out, so the colour is never
    the only cue; then the basis, the paper's figure, ours with its interval, n, the test and the note."""
    shown = table.assign(interval=[f"[{_shown_number(lo)}, {_shown_number(hi)}]" if str(lo).strip() else ""
                                   for lo, hi in zip(table["ci_low"], table["ci_high"])])
    shown = shown[["claim", "verdict", "basis", "paper_value", "our_value", "interval", "n", "test", "chapter",
                   "note"]].rename(columns={"paper_value": "paper's value", "our_value": "our value",
                                            "interval": "95% interval"})
    sty = shown.style.hide(axis="index")
    sty = sty.map(lambda v: f"background-color: {VERDICT_COLOURS.get(v, 'white')}; font-weight: bold",
                  subset=["verdict"])
    # the book's fitting table style ("dense" in scoring_lab.book.styling, which this layer may not
    # import): no wider than its column; text wraps between words, and where words are long (claim,
    # values, n, test, note) inside them too, above a minimum width
    broad = [("overflow-wrap", "anywhere"), ("min-width", "5em")]
    long_words = [("overflow-wrap", "anywhere"), ("min-width", "4em")]
    columns = {"claim": broad, "verdict": [("white-space", "nowrap")], "paper's value": long_words,
               "our value": long_words, "n": long_words, "test": broad, "note": broad}
    sty = sty.set_table_styles({col: [{"selector": "td", "props": props}] for col, props in columns.items()})
    return sty.set_table_styles([{"selector": "", "props": [("max-width", "100%"), ("font-size", "75%"),
                                                            ("border-collapse", "collapse")]},
                                 {"selector": "td, th", "props": [("padding", "2px 3px"), ("vertical-align", "top"),
                                                                  ("white-space", "normal"), ("text-align", "left"),
                                                                  ("overflow-wrap", "normal")]}], overwrite=False)


def styled_by_paper(table: pd.DataFrame) -> list[tuple[str, object]]:
    """``(paper title, styled claims)`` per paper, in :data:`PAPERS` order (see :func:`gather`)."""
    return [(title, styled_claims(group)) for title, group in table.groupby("paper_title", sort=False)]
