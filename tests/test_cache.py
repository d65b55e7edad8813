"""The content-addressed artifact cache: keys, atomic writes, corruption, listing."""
import json
import warnings

import numpy as np
import pytest

from scoring_lab.models.cache import ArtifactCache, CorruptArtifactWarning, array_digest, stable_hash
from scoring_lab.cli import main


def _produce(value):
    def produce(folder):
        (folder / "v.txt").write_text(value)
    return produce


def _load(art):
    return art.file("v.txt").read_text()


def test_key_is_content_addressed():
    assert ArtifactCache.key({"a": 1, "b": [1, 2]}) == ArtifactCache.key({"b": [1, 2], "a": 1})
    assert ArtifactCache.key({"a": 1}) != ArtifactCache.key({"a": 2})
    assert len(ArtifactCache.key({})) == 32 and stable_hash((1, 2)) == stable_hash([1, 2])


def test_array_digest_names_content_shape_and_dtype():
    a = np.arange(12, dtype=np.int64)
    assert array_digest(a) == array_digest(a.copy()) == array_digest(np.arange(12, dtype=np.int64))
    assert len(array_digest(a)) == 32
    same_bytes = {array_digest(a), array_digest(a.reshape(3, 4)), array_digest(a.reshape(4, 3)),
                  array_digest(a.view(np.float64)), array_digest(a.view(np.uint8).reshape(-1))}
    assert len(same_bytes) == 5                                  # the bytes are shared; shape or dtype differs
    assert array_digest(a.reshape(3, 4).T) == array_digest(np.ascontiguousarray(a.reshape(3, 4).T))
    assert array_digest(a.reshape(3, 4).T) != array_digest(a.reshape(4, 3))   # C order of the values, not memory
    assert array_digest(a, a) != array_digest(a) and array_digest(a[:6], a[6:]) != array_digest(a)
    assert array_digest(a.view(">i8")) != array_digest(a)        # same bytes, other byte order
    assert array_digest(np.array(["x", "y"])) != array_digest(np.array(["y", "x"]))
    with pytest.raises(TypeError, match="array 1 has dtype object"):
        array_digest(a, np.array(["x", None], dtype=object))


def test_hit_after_miss_and_a_new_key_when_inputs_change(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls = []

    def produce(folder):
        calls.append(1)
        (folder / "v.txt").write_text("x")

    assert cache.get_or_compute("thing", {"seed": 0}, produce, _load) == ("x", False)
    assert cache.get_or_compute("thing", {"seed": 0}, produce, _load) == ("x", True)
    assert cache.get_or_compute("thing", {"seed": 1}, produce, _load) == ("x", False)
    assert len(calls) == 2
    manifest = json.loads((cache.path("thing", cache.key({"seed": 0})) / "manifest.json").read_text())
    assert manifest["inputs"] == {"seed": 0} and set(manifest["files"]) == {"v.txt"}


def test_a_killed_producer_leaves_nothing_behind(tmp_path):
    cache = ArtifactCache(tmp_path)

    def dies(folder):
        (folder / "half.bin").write_bytes(b"\0" * 100)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute("thing", {"a": 1}, dies, _load)
    assert not any((tmp_path / "thing").iterdir())
    assert cache.entries() == []


@pytest.mark.parametrize("damage", ["truncate", "delete", "manifest"])
def test_corrupt_artifact_is_reported_and_recomputed(tmp_path, damage):
    cache = ArtifactCache(tmp_path)
    cache.get_or_compute("thing", {"a": 1}, _produce("good"), _load)
    folder = cache.path("thing", cache.key({"a": 1}))
    if damage == "truncate":
        (folder / "v.txt").write_text("go")
    elif damage == "delete":
        (folder / "v.txt").unlink()
    else:
        (folder / "manifest.json").write_text("{not json")
    with pytest.warns(CorruptArtifactWarning, match=r"thing/.* is corrupt .*recomputing"):
        value, hit = cache.get_or_compute("thing", {"a": 1}, _produce("fresh"), _load)
    assert (value, hit) == ("fresh", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.get_or_compute("thing", {"a": 1}, _produce("never"), _load) == ("fresh", True)


def test_a_loader_that_fails_counts_as_corrupt(tmp_path):
    cache = ArtifactCache(tmp_path)
    cache.get_or_compute("thing", {"a": 1}, _produce("good"), _load)

    def broken(art):
        raise ValueError("cannot parse")

    with pytest.warns(CorruptArtifactWarning, match="cannot parse"):
        with pytest.raises(ValueError):  # the recomputed artifact is loaded by the same broken loader
            cache.get_or_compute("thing", {"a": 1}, _produce("fresh"), broken)


def test_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_LAB_CACHE", str(tmp_path / "c"))
    assert ArtifactCache().root == tmp_path / "c"


def test_cli_list_and_clear(tmp_path, capsys):
    cache = ArtifactCache(tmp_path)
    cache.get_or_compute("scorer", {"a": 1}, _produce("x"), _load)
    cache.get_or_compute("predictions", {"a": 1}, _produce("y"), _load)
    assert main(["cache", "list", "--root", str(tmp_path), "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert sorted(e["kind"] for e in entries) == ["predictions", "scorer"]
    assert main(["cache", "list", "--root", str(tmp_path)]) == 0
    assert "2 artifacts" in capsys.readouterr().out
    assert main(["cache", "clear", "--root", str(tmp_path), "--kind", "predictions"]) == 0
    assert "removed 1 artifacts" in capsys.readouterr().out
    assert [e["kind"] for e in cache.entries()] == ["scorer"]
    assert main(["cache", "clear", "--root", str(tmp_path)]) == 0
    assert cache.entries() == []


def _package(root, name, files):
    """Write a throwaway package ``name`` under ``root`` and import it afresh."""
    import importlib
    import sys
    for rel, text in files.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for sub in list(sys.modules):
        if sub == name or sub.startswith(name + "."):
            del sys.modules[sub]
    sys.path.insert(0, str(root))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(root))


_HELPERS = "def scale(x):\n    return 2 * x\n\n\ndef unrelated():\n    return 0\n"
_PRODUCER = "from .helpers import scale\n\n\ndef produce(x):\n    return scale(x) + 1\n"


def test_code_version_follows_what_computes_not_where_it_is_written(tmp_path):
    import importlib
    from scoring_lab.models.cache import code_version
    _package(tmp_path, "cv_flat", {"__init__.py": "", "helpers.py": _HELPERS, "main.py": _PRODUCER})
    # the same code, moved: the helper into a subpackage, with a docstring, a comment and other imports
    _package(tmp_path, "cv_moved", {
        "__init__.py": "", "tools/__init__.py": "",
        "tools/core.py": "import math  # unused\n\n\ndef scale(x):\n    \"\"\"Twice x.\"\"\"\n    return 2 * x  # doubled\n",
        "main.py": "from .tools.core import scale\n\n\ndef produce(x):\n    return scale(x) + 1\n"})
    flat = importlib.import_module("cv_flat.main")
    moved = importlib.import_module("cv_moved.main")
    assert code_version(flat.produce, package="cv_flat") == code_version(moved.produce, package="cv_moved")
    # a function root does not depend on its neighbours; a module root does
    _package(tmp_path, "cv_neighbour", {"__init__.py": "", "main.py": _PRODUCER,
                                        "helpers.py": _HELPERS.replace("return 0", "return 1")})
    neighbour = importlib.import_module("cv_neighbour.main")
    assert code_version(neighbour.produce, package="cv_neighbour") == code_version(flat.produce, package="cv_flat")
    assert code_version(importlib.import_module("cv_neighbour.helpers"), package="cv_neighbour") != \
        code_version(importlib.import_module("cv_flat.helpers"), package="cv_flat")


def test_code_version_changes_when_a_called_body_changes(tmp_path):
    import importlib
    from scoring_lab.models.cache import code_version
    _package(tmp_path, "cv_base", {"__init__.py": "", "helpers.py": _HELPERS, "main.py": _PRODUCER})
    _package(tmp_path, "cv_edit", {"__init__.py": "", "helpers.py": _HELPERS.replace("2 * x", "3 * x"),
                                   "main.py": _PRODUCER})
    # reached as a module's attribute, from an import inside the function
    _package(tmp_path, "cv_attr", {"__init__.py": "", "helpers.py": _HELPERS.replace("2 * x", "3 * x"),
                                   "main.py": "def produce(x):\n    from . import helpers\n    return helpers.scale(x) + 1\n"})
    base = code_version(importlib.import_module("cv_base.main").produce, package="cv_base")
    assert code_version(importlib.import_module("cv_edit.main").produce, package="cv_edit") != base
    attr = importlib.import_module("cv_attr.main").produce
    assert code_version(attr, package="cv_attr") != code_version(attr, package="elsewhere")  # the helper is followed
