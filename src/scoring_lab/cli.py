"""The ``scoring-lab`` command line.

    scoring-lab data summary --source synthetic|pasta-csv DIR|asap-sas DIR|csv FILE [--profile P] [--json]
                             [-o KEY=VALUE ...]
    scoring-lab cache list [--json] | scoring-lab cache clear [--kind K]
    scoring-lab book execute [--profile P] [--chapter NAME ...] [--force]
    scoring-lab book sync
    scoring-lab run CHAPTER|all [--profile P] [-p KEY VALUE ...] [--force]
    scoring-lab reproduce-check [--profile smoke] [--chapter NAME ...]
    scoring-lab compare-results RESULTS_A RESULTS_B
    scoring-lab score --model STUDENT_DIR --input responses.csv [--text-column C] --output scored.csv
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .data import SOURCES, DataError
from .profiles import PROFILE_NAMES, ProfileError


def _parse_source(values: list[str]) -> tuple[str, str | None]:
    source, *rest = values
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}: choose one of {', '.join(SOURCES)}")
    if source == "synthetic":
        if rest:
            raise DataError("--source synthetic takes no path")
        return source, None
    if len(rest) != 1:
        what = "the data file" if source == "csv" else "the data directory"
        raise DataError(f"--source {source} needs exactly one PATH ({what})")
    return source, rest[0]


#: load_tasks arguments that come from elsewhere than ``-o``: the seed from --seed, the rest from the profile.
_NOT_OPTIONS = {"seed": "give the seed with --seed", "val_fraction": "it comes from the profile (data.val_fraction)",
                "scale": "it comes from the profile (data.scale)",
                "difficulty": "it comes from the profile (data.difficulty)",
                "source": "give the source with --source", "path": "give the path with --source SOURCE PATH"}


def option_value(text: str):
    """A ``-o`` value: a list of stripped strings when it holds a comma (``a,b`` -> ``["a", "b"]``;
    empty items are left out, and a value of commas only stays text, so ``-o delimiter=,`` works),
    else as :func:`parameter_value` reads it (None, True/False, int, float, else text)."""
    if "," in text:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if items:
            return items
        return text
    return parameter_value(text)


def parse_options(items: list[str] | None) -> dict:
    """``["KEY=VALUE", ...]`` (repeatable ``-o``) as the loader's options ``{KEY: value}``."""
    options: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise DataError(f"-o/--option expects KEY=VALUE (e.g. -o text_column=answer), got {item!r}")
        if not key.isidentifier():
            raise DataError(f"-o/--option: {key!r} is not an option name (in {item!r})")
        if key in _NOT_OPTIONS:
            raise DataError(f"-o/--option: {key!r} is not a loader option here: {_NOT_OPTIONS[key]}")
        if key in options:
            raise DataError(f"-o/--option: {key!r} is given twice")
        options[key] = option_value(value.strip())
    return options


def _data_summary(args) -> int:
    from .data.summary import summary_table
    from .book.run import setup

    source, path = _parse_source(args.source)
    options = parse_options(args.options)
    run = setup("data", profile=args.profile, source=source, path=path, seed=args.seed, options=options)
    table = summary_table(run.tasks)
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), indent=2))
        return 0
    shown = table.drop(columns=["label_names"]).copy()
    shown["prevalence"] = shown["prevalence"].map(lambda p: " ".join(f"{x:.2f}" for x in p))
    print(shown.to_string(index=False))
    return 0


def _execute(args, **parameters) -> int:
    """Run the chapters; a chapter that fails is named with its error, and the exit status is 1."""
    from papermill.exceptions import PapermillExecutionError

    from .book.chapters import execute_all

    try:
        execute_all(args.notebooks, args.output, profile=args.profile, cwd=Path.cwd(), only=args.chapter,
                    skip_current=not args.force, **parameters)
    except PapermillExecutionError as e:
        print(f"scoring-lab: error: a chapter failed in cell {e.exec_count} with {e.ename}: {e.evalue}\n"
              f"the executed notebook, traceback included, is in {args.output}/", file=sys.stderr)
        return 1
    return 0


def _book_execute(args) -> int:
    return _execute(args)


def parameter_value(text: str):
    """A ``-p`` value as papermill's own command line reads it: None, True/False, int, float, else text;
    and a YAML mapping or list when it starts with ``{`` or ``[`` (``-p data_options "{view: holistic}"``),
    which papermill would need ``-y`` for."""
    if text.lstrip().startswith(("{", "[")):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise DataError(f"-p value {text!r} starts like YAML but is not: {str(e).splitlines()[0]}") from e
    if text in ("None", "none", "null"):
        return None
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _run(args) -> int:
    parameters = {key: parameter_value(value) for key, value in (args.parameters or [])}
    if "profile" in parameters:
        raise DataError("give the profile with --profile, not -p profile")
    return _execute(args, **parameters)


def _reproduce_check(args) -> int:
    from .book.reproduce import reproduce_check

    differences = reproduce_check(args.profile, only=args.chapter, notebooks_dir=args.notebooks,
                                  workdir=args.workdir)
    return 1 if differences else 0


def _compare_results(args) -> int:
    from .book.reproduce import compare_trees

    return 1 if compare_trees(args.a, args.b) else 0


def _book_sync(args) -> int:
    from .book.chapters import chapter_sources, sync_notebook

    for s in chapter_sources(args.notebooks):
        print(sync_notebook(s))
    return 0


def _cache_list(args) -> int:
    from .models.cache import ArtifactCache

    cache = ArtifactCache(args.root)
    entries = cache.entries()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    print(f"cache: {cache.root}")
    if not entries:
        print("(empty)")
        return 0
    import pandas as pd

    table = pd.DataFrame(entries)
    table["MB"] = (table["bytes"] / 1e6).round(2)
    table["created"] = pd.to_datetime(table["created"], unit="s").dt.strftime("%Y-%m-%d %H:%M")
    print(table[["kind", "key", "MB", "created"]].to_string(index=False))
    print(f"{len(table)} artifacts, {table['bytes'].sum() / 1e6:.1f} MB")
    return 0


def _cache_clear(args) -> int:
    from .models.cache import ArtifactCache

    cache = ArtifactCache(args.root)
    n = cache.clear(args.kind or None)
    print(f"removed {n} artifacts from {cache.root}")
    return 0


def _score(args) -> int:
    from .kd.deploy import score_csv

    frame = score_csv(args.model, args.input, args.output, text_column=args.text_column)
    print(f"scored {len(frame)} rows -> {args.output}")
    return 0


FORCE_HELP = ("execute even a chapter whose page and results are current (same source, parameters, code and "
              "environment; page and results files intact), which is otherwise not executed again")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scoring-lab", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect data sources").add_subparsers(dest="action", required=True)
    s = data.add_parser("summary", help="one row per task: labels, split sizes, prevalences")
    s.add_argument("--source", nargs="+", default=["synthetic"], metavar="SOURCE [PATH]",
                   help=f"one of {', '.join(SOURCES)}; pasta-csv and asap-sas take a directory PATH, "
                        "csv a file PATH")
    s.add_argument("--profile", default="default", help=f"{', '.join(PROFILE_NAMES)} or a profile YAML path")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true", help="print a JSON list of objects")
    s.add_argument("-o", "--option", dest="options", action="append", metavar="KEY=VALUE",
                   help="a loader option, repeatable (e.g. -o text_column=answer -o label_columns=a,b); "
                        "values are read as None, true/false, numbers or text, a value with a comma as a list")
    s.set_defaults(func=_data_summary)

    cache = sub.add_parser("cache", help="the artifact cache of trained models and predictions").add_subparsers(
        dest="action", required=True)
    c = cache.add_parser("list", help="every cached artifact: kind, key, size, creation time")
    c.add_argument("--root", default=None, help="cache folder (default: $SCORING_LAB_CACHE or .cache/scoring-lab)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_cache_list)
    c = cache.add_parser("clear", help="remove cached artifacts (all, or of the given kinds)")
    c.add_argument("--root", default=None)
    c.add_argument("--kind", action="append", help="only this kind (e.g. scorer, predictions); repeatable")
    c.set_defaults(func=_cache_clear)

    book = sub.add_parser("book", help="execute the book's chapters").add_subparsers(dest="action", required=True)
    e = book.add_parser("execute", help="run every chapter with papermill into book/chapters")
    e.add_argument("--profile", default="default")
    e.add_argument("--chapter", action="append", help="only this chapter (file stem); repeatable")
    e.add_argument("--notebooks", default="notebooks")
    e.add_argument("--output", default="book/chapters")
    e.add_argument("--force", action="store_true", help=FORCE_HELP)
    e.set_defaults(func=_book_execute)
    y = book.add_parser("sync", help="rewrite notebooks/*.ipynb from their MyST sources")
    y.add_argument("--notebooks", default="notebooks")
    y.set_defaults(func=_book_sync)
    r = sub.add_parser("run", help="execute chapters with papermill (progress on the terminal) into book/chapters",
                       description="Execute one chapter, several, or all, with papermill and the given parameters.")
    r.add_argument("chapter", nargs="+", help="chapter file stem (01_scorers), its name (scorers), or all")
    r.add_argument("--profile", default="default", help=f"{', '.join(PROFILE_NAMES)} or a profile YAML path")
    r.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="a notebook parameter, as papermill's -p (e.g. -p seed 1 -p source asap-sas)")
    r.add_argument("--notebooks", default="notebooks")
    r.add_argument("--output", default="book/chapters")
    r.add_argument("--force", action="store_true", help=FORCE_HELP)
    r.set_defaults(func=_run)

    d = sub.add_parser("reproduce-check", help="run chapters twice from two empty caches; fail if any results CSV "
                                               "differs (wall-clock columns excepted)")
    d.add_argument("--profile", default="smoke")
    d.add_argument("--chapter", action="append", help="only this chapter; repeatable (default: all)")
    d.add_argument("--notebooks", default="notebooks")
    d.add_argument("--workdir", default=None, help="keep both runs here (default: a temporary folder)")
    d.set_defaults(func=_reproduce_check)

    m = sub.add_parser("compare-results", help="compare two results trees (e.g. before and after a change); fail if "
                                               "any results CSV differs (wall-clock columns excepted)")
    m.add_argument("a", help="a results folder (results/, results/<profile> or results/<profile>/<chapter>)")
    m.add_argument("b", help="the results folder to compare it with, at the same level")
    m.set_defaults(func=_compare_results)

    o = sub.add_parser("score", help="score a CSV/TSV of responses with a saved student; writes a CSV with "
                                     "predicted_score and p_<class> columns added")
    o.add_argument("--model", required=True, metavar="STUDENT_DIR",
                   help="folder of a saved student (student.json, weights.safetensors)")
    o.add_argument("--input", required=True, metavar="FILE", help="responses file: CSV, or TSV for .tsv/.tab")
    o.add_argument("--text-column", default="response", help="the column holding the responses (default: response)")
    o.add_argument("--output", required=True, metavar="FILE", help="the scored CSV to write (UTF-8)")
    o.set_defaults(func=_score)
    return p


#: Modules that ``pip install scoring-lab`` leaves out, by the extra that installs them: the commands that
#: execute or render chapters (run, book, reproduce-check) import them when they start.
EXTRA_MODULES = {"book": ("papermill", "jupytext", "nbformat", "myst_nb", "IPython", "ipykernel", "matplotlib",
                          "seaborn", "sphinx", "jupyter_book"),
                 "irt": ("py_irt", "pymoo", "pyro")}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The extra that installs the module ``error`` could not import, or None when no extra does."""
    top = (error.name or "").split(".")[0]
    return next((extra for extra, modules in EXTRA_MODULES.items() if top in modules), None)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ProfileError, FileNotFoundError, ValueError) as e:
        print(f"scoring-lab: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        extra = missing_extra(e)
        if extra is None:
            raise
        command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
        print(f"scoring-lab: error: `scoring-lab {command}` needs {e.name.split('.')[0]}, which the "
              f"[{extra}] extra installs: pip install 'scoring-lab[{extra}]' (or `make install` in a clone)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
