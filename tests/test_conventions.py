"""Project conventions a later change could break: the project's home written in one place, and no
library name that pytest would collect as a test."""
import ast
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scoring_lab.book.chapters import REPOSITORY_PLACEHOLDER, repository, to_notebook

ROOT = Path(__file__).resolve().parents[1]


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def test_the_projects_home_is_written_only_in_config_yml():
    """_config.yml's repository.url is the one place; the paired notebooks/*.ipynb are generated from
    their .md and it (`scoring-lab book sync`), so they are the only other files that hold it."""
    url = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    home = url.split("://", 1)[-1].rstrip("/")          # github.com/<owner>/<name>, with or without a scheme
    assert home.count("/") >= 2, f"_config.yml: repository.url {url!r} is not a repository address"
    generated = {p.with_suffix(".ipynb").relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.md")}
    spelled = []
    for name in _tracked_files():
        path = ROOT / name
        if name == "_config.yml" or name in generated or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        spelled += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1) if home in line]
    assert not spelled, (f"the project's home ({home}) is written outside _config.yml's repository.url: "
                         f"{spelled}; read it with scoring_lab.book.chapters.repository(), or write "
                         f"{REPOSITORY_PLACEHOLDER} in a chapter's code cell")


def test_colab_install_cells_install_from_the_configured_repository(tmp_path):
    """to_notebook writes _config.yml's repository.url into the install cell; another address in
    _config.yml is all it takes to publish the book elsewhere."""
    url, branch = repository(ROOT)
    installs = [c.source for c in to_notebook(ROOT / "notebooks" / "00_data.md").cells
                if c.cell_type == "code" and "pip" in c.source]
    assert len(installs) == 1 and f'"scoring-lab[notebooks] @ git+{url}"' in installs[0] and REPOSITORY_PLACEHOLDER not in installs[0]

    (tmp_path / "_config.yml").write_text("repository:\n  url: https://example.org/me/fork/\n  branch: dev\n")
    (tmp_path / "notebooks").mkdir()
    src = tmp_path / "notebooks" / "00_data.md"
    src.write_text((ROOT / "notebooks" / "00_data.md").read_text(encoding="utf-8"), encoding="utf-8")
    assert repository(tmp_path) == ("https://example.org/me/fork", "dev")
    cell = next(c.source for c in to_notebook(src).cells if c.cell_type == "code" and "pip" in c.source)
    assert '"scoring-lab[notebooks] @ git+https://example.org/me/fork"' in cell

    (tmp_path / "_config.yml").write_text("title: no repository\n")
    assert repository(tmp_path) is None
    with pytest.raises(ValueError, match=r"00_data\.md: a cell installs from \{repository\.url\}.*repository\.url"):
        to_notebook(src)


def test_no_library_function_or_class_is_named_like_a_test():
    """pytest collects a module-level ``test_*`` function (or a ``Test*`` class) wherever a test module
    imports it, so the library names none."""
    named = []
    for path in sorted((ROOT / "src" / "scoring_lab").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                named.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                named.append(f"{path.relative_to(ROOT)}:{node.lineno} class {node.name}")
    assert not named, f"library names pytest would collect: {named}"
