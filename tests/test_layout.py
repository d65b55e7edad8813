"""The library's plan (README, "The library's layers"): one package per paper over a shared core,
imports pointing down only, no class over 250 lines and no module over 500."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PAPERS = ("kd", "gw", "moe", "irt")
# floors, lowest first; a module may import its own floor's modules and any floor below
FLOORS = [
    {"", "errors", "paths", "metrics", "paired_metrics", "claims", "published", "study_steps", "verdicts"},
    {"data"},
    {"profiles"},
    {"models"},
    {"merging"},
    set(PAPERS),
    {"book"},
    {"cli"},
]
ALLOWED_ACROSS_PAPERS = {("moe", "kd")}   # the MoE study reuses the KD chapter's sets and teacher logits


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The floor unit of a module: its subpackage (``kd``), or its own name at the ground floor."""
    parts = module.split(".")[1:]
    if not parts:
        return ""
    return parts[0]


def _floor(unit: str) -> int:
    return next(i for i, units in enumerate(FLOORS) if unit in units)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every scoring_lab module a file imports, function-level ones too."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "scoring_lab":
                for alias in node.names:   # `from . import kd` names a module
                    sub = f"{target}.{alias.name}"
                    is_module = (SRC / sub.replace(".", "/")).is_dir() or (SRC / (sub.replace(".", "/") + ".py")).is_file()
                    out.append((node.lineno, sub if is_module else target))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "scoring_lab"]
    return out


FILES = sorted((SRC / "scoring_lab").rglob("*.py"))


def test_every_unit_has_a_floor():
    units = {_unit(_module(f)) for f in FILES}
    assert units <= set().union(*FLOORS), units - set().union(*FLOORS)
    assert {"kd", "gw", "moe", "irt", "models", "merging", "book", "data"} <= units


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(SRC).as_posix())
def test_imports_point_down(path):
    here = _unit(_module(path))
    wrong = []
    for line, target in _imports(path):
        there = _unit(target)
        if there == here or (here, there) in ALLOWED_ACROSS_PAPERS:
            continue
        if _floor(there) > _floor(here) or (_floor(there) == _floor(here) and here in PAPERS):
            wrong.append(f"line {line}: {target}")
    assert not wrong, f"{path.name} imports up or across: {wrong}"


def test_nothing_but_notebooks_cli_and_benchmarks_imports_book():
    for path in FILES:
        if _unit(_module(path)) in ("book", "cli"):
            continue
        assert not [t for _, t in _imports(path) if _unit(t) == "book"], path


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(SRC).as_posix())
def test_sizes(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 500, f"{path.name}: {len(text.splitlines())} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= 250, f"{path.name}: class {node.name} is {length} lines"


def test_no_module_left_at_an_old_flat_path():
    flat = {p.stem for p in (SRC / "scoring_lab").glob("*.py")}
    assert flat == {"__init__", "claims", "cli", "errors", "metrics", "paired_metrics", "paths", "study_steps",
                    "verdicts"}, flat
