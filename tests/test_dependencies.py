"""What the project installs: the lock is exactly what ``scoring-lab[book,test]`` needs, every pin meets
pyproject's ranges, and the core commands work without the book's toolchain."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scoring_lab.cli import EXTRA_MODULES, main

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
#: a build requirement, not a runtime one: `make install` builds the editable project without isolation
BUILD_ONLY = {"setuptools"}


def lock_pins() -> dict[str, str]:
    """requirements.lock as {canonical name: version}; every line must be an exact pin."""
    pins = {}
    for n, line in enumerate((ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"requirements.lock line {n}: {line!r} is not NAME==VERSION"
        pins[canonicalize_name(name)] = version
    return pins


def project_requirements(extras: tuple[str, ...]) -> list[Requirement]:
    """The project's own requirements with ``extras``, its self-references (``scoring-lab[irt]``) expanded."""
    wanted, seen, out = list(extras), set(), [Requirement(r) for r in PROJECT["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in PROJECT["optional-dependencies"][extra]:
            r = Requirement(text)
            if canonicalize_name(r.name) == canonicalize_name(PROJECT["name"]):
                wanted.extend(r.extras)
            else:
                out.append(r)
    return out


def needed(roots: list[Requirement]) -> set[str]:
    """Every distribution ``roots`` pull in, through the installed distributions' metadata."""
    found, stack = set(), [(canonicalize_name(r.name), tuple(r.extras)) for r in roots]
    visited = set()
    while stack:
        name, extras = stack.pop()
        if (name, extras) in visited:
            continue
        visited.add((name, extras))
        found.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue                                    # reported by the caller: needed but not installed
        for text in requires:
            r = Requirement(text)
            if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in (*extras, "")):
                stack.append((canonicalize_name(r.name), tuple(sorted(r.extras))))
    return found


def test_every_pin_meets_the_projects_ranges():
    pins = lock_pins()
    for r in project_requirements(("book", "test", "irt")):
        name = canonicalize_name(r.name)
        assert name in pins, f"pyproject.toml requires {r} but requirements.lock does not pin {r.name}"
        assert r.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock pins {r.name}=={pins[name]}, outside pyproject.toml's {r}"


def test_the_lock_is_exactly_what_book_and_test_need():
    pins = lock_pins()
    wanted = needed(project_requirements(("book", "test")))
    assert sorted(wanted - set(pins)) == [], "needed by scoring-lab[book,test] but not pinned in requirements.lock"
    assert sorted(set(pins) - wanted - BUILD_ONLY) == [], "pinned in requirements.lock but nothing needs it"
    for name in ("onnxscript", "girth", "nbval"):
        assert name not in pins


def test_python_floor_matches_the_lock_and_conda():
    assert PROJECT["requires-python"] == ">=3.11"
    assert "  - python=3.11\n" in (ROOT / "environment.yml").read_text(encoding="utf-8")


def test_core_commands_do_not_import_the_books_toolchain():
    code = ("import sys; import scoring_lab.cli, scoring_lab.kd.deploy, scoring_lab.data.summary, scoring_lab.book.run;"
            "import json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    optional = {m for modules in EXTRA_MODULES.values() for m in modules}
    assert sorted(optional & set(json.loads(loaded))) == []


def test_a_book_command_without_the_book_extra_names_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "papermill", None)
    monkeypatch.setitem(sys.modules, "papermill.exceptions", None)
    assert main(["run", "00_data", "--profile", "smoke", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scoring-lab: error: `scoring-lab run` needs papermill, which the [book] extra installs")
    assert "pip install 'scoring-lab[book]'" in err
    assert list(tmp_path.iterdir()) == []


def test_colab_install_cells_ask_for_what_the_chapters_import():
    """A chapter run by hand (Colab) gets the [notebooks] extra; every third-party module a chapter or the
    book modules it calls import must come with the core or that extra."""
    import ast
    import re

    import jupytext

    chapters = sorted((ROOT / "notebooks").glob("[0-9]*.md"))
    installs = [re.findall(r'"(scoring-lab[^ "]*) @ git\+', c.source) for p in chapters
                for c in jupytext.read(p).cells if c.cell_type == "code" and "git+" in c.source]
    assert installs and all(i == ["scoring-lab[notebooks]"] for i in installs), installs
    modules = set()
    cells = [c.source for p in chapters for c in jupytext.read(p).cells if c.cell_type == "code"]
    statements = [node for text in cells for node in ast.walk(ast.parse(
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("%", "!")))))]
    for name in ("plots", "styling", "run", "chapters"):   # at module level: what importing them needs
        statements += ast.parse((ROOT / "src" / "scoring_lab" / "book" / f"{name}.py").read_text(encoding="utf-8")).body
    for node in statements:
        if isinstance(node, ast.Import):
            modules.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module.split(".")[0])
    owners = metadata.packages_distributions()
    wanted = needed(project_requirements(("notebooks",)))
    third_party = {m for m in modules if m in owners and m != "scoring_lab"}
    missing = {m: owners[m] for m in third_party if not {canonicalize_name(d) for d in owners[m]} & wanted}
    assert missing == {}, "imported by a chapter but not installed by scoring-lab[notebooks]"
