"""A content-addressed artifact cache for expensive results (trained models, predictions).

An artifact is a folder ``<root>/<kind>/<key>/`` holding the producer's files and a
``manifest.json`` with the SHA-256 of each file and the inputs that made the key.
The key is the SHA-256 of those inputs: the producer's config, a fingerprint of
its data, its seed and a code version (a hash of the normalized source of the code that
computes it, wherever that code is written: :func:`code_version`), so changing any of them makes a new artifact rather than reusing a
stale one.

Writes are atomic: the producer writes into a temporary folder beside the final
one, which is renamed into place only once complete, so a killed run leaves no
half-written artifact. An artifact that fails its checksums, or whose loader
raises, is reported (a warning naming it), removed and recomputed.

The root is ``$SCORING_LAB_CACHE``, else ``.cache/scoring-lab`` at the project root
when run inside the project, else ``~/.cache/scoring-lab``.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import json
import os
import shutil
import textwrap
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..paths import project_root

CACHE_ENV = "SCORING_LAB_CACHE"
# When set, every lookup appends a JSON line {"kind", "key", "hit"} to this file: how the
# book's executor counts the cache hits and misses of a chapter run in its own kernel.
CACHE_LOG_ENV = "SCORING_LAB_CACHE_LOG"
MANIFEST = "manifest.json"


class CorruptArtifactWarning(UserWarning):
    """An artifact could not be read back; it is removed and recomputed."""


def default_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    root = project_root()
    return (root / ".cache" / "scoring-lab") if root is not None else Path.home() / ".cache" / "scoring-lab"


def _log_lookup(kind: str, key: str, hit: bool) -> None:
    log = os.environ.get(CACHE_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "key": key, "hit": hit}) + "\n")


def lookup_counts(log: str | Path) -> dict[str, int]:
    """``{"hits": n, "misses": m}`` from a lookup log written under ``$SCORING_LAB_CACHE_LOG``."""
    counts = {"hits": 0, "misses": 0}
    path = Path(log)
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                counts["hits" if json.loads(line)["hit"] else "misses"] += 1
    return counts


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys; tuples as lists)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


def array_digest(*arrays) -> str:
    """A short hash of arrays by content: each one's dtype (with byte order), shape and C-ordered bytes,
    so the same bytes in another shape or dtype hash differently. What a cache key names an array by.
    Object arrays have no stable bytes and are refused."""
    h = hashlib.sha256()
    for i, a in enumerate(arrays):
        a = np.ascontiguousarray(a)
        if a.dtype.hasobject:
            raise TypeError(f"array_digest: array {i} has dtype object, whose bytes are pointers; "
                            "convert it (e.g. to str or a number dtype) first")
        h.update(f"{a.dtype.descr}{a.shape};".encode())   # descr: '<f8', or a structured dtype's fields
        h.update(a.tobytes())
    return h.hexdigest()[:32]


# Modules whose code stores, locates or configures rather than computes: a code version does not
# follow references into them (their settings reach a key as values, through the config).
_NOT_COMPUTING = ("scoring_lab.models.cache", "scoring_lab.paths", "scoring_lab.profiles", "scoring_lab.published",
                  "scoring_lab.book")


def _normalized_source(obj) -> str:
    """The source of a module, class or function as the computer sees it: parsed and unparsed, so
    comments and layout drop out, with docstrings and import statements removed, so moving the code
    to another module (which changes only its imports) keeps it the same."""
    src = textwrap.dedent(inspect.getsource(obj))
    try:
        tree = ast.parse(src)
    except SyntaxError:   # a lambda's line, say: hash it as written
        return src
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        kept = [n for n in body if not isinstance(n, (ast.Import, ast.ImportFrom))]
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and kept \
                and isinstance(kept[0], ast.Expr) and isinstance(kept[0].value, ast.Constant) \
                and isinstance(kept[0].value.value, str):
            kept = kept[1:]
        node.body = kept or [ast.Pass()]
    return ast.unparse(tree)


def _local_imports(tree: ast.AST, module: ModuleType) -> dict[str, Any]:
    """Names bound by import statements anywhere in ``tree`` (function-level ones too), resolved."""
    names: dict[str, Any] = {}
    package = module.__package__ if module.__package__ is not None else module.__name__.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = importlib.import_module("." * node.level + (node.module or ""), package) \
                if node.level else importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(base, alias.name, None)
                if value is None:
                    try:
                        value = importlib.import_module(f"{base.__name__}.{alias.name}")
                    except ImportError:
                        continue
                names[alias.asname or alias.name] = value
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = importlib.import_module(alias.name)
    return names


def _referenced(obj, package: str) -> list:
    """The functions and classes of ``package`` that ``obj``'s source names directly: a global
    name (``fit_items``) or an attribute of a module (``irt.fit_items``). Calls through an
    instance (``scorer.predict``) cannot be resolved from the text: list their class as a root."""
    module = obj if isinstance(obj, ModuleType) else inspect.getmodule(obj)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (SyntaxError, OSError, TypeError):
        return []
    scope = {**vars(module), **_local_imports(tree, module)}
    found = []
    for node in ast.walk(tree):
        value = None
        if isinstance(node, ast.Name):
            value = scope.get(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and isinstance(scope.get(node.value.id), ModuleType):
            value = getattr(scope[node.value.id], node.attr, None)
        if (inspect.isfunction(value) or inspect.isclass(value)) and _computes(value, package):
            found.append(value)
    return found


def _computes(obj, package: str) -> bool:
    name = getattr(obj, "__module__", "") or ""
    return (name == package or name.startswith(package + ".")) and not name.startswith(_NOT_COMPUTING)


def code_version(*roots: ModuleType | Callable | type, package: str = "scoring_lab") -> str:
    """A short hash of the code that computes an artifact: ``roots`` (modules, classes or functions)
    and, followed transitively, the functions and classes of ``package`` their source names.

    What counts is what the code says, not where it is written: each piece is hashed as its
    normalized source (no comments, docstrings or imports) and the pieces as an unordered set,
    so moving code between modules keeps its version while editing a body a root reaches changes
    it. Methods reached only through an instance are not followed: name their class (or module)
    among the roots. Modules that only store, locate or configure (the cache, paths, profiles,
    the papers' figures, the book) are not followed.
    """
    return _code_version(roots, package)


@functools.lru_cache(maxsize=None)
def _code_version(roots: tuple, package: str) -> str:
    """:func:`code_version`, once per roots: code does not change while a process runs (as for :func:`_piece`), and
    a chapter asks for the same version hundreds of times (every student's cache key)."""
    seen: set[int] = set()
    digests: set[str] = set()
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        digest, referenced = _piece(obj, package)
        digests.add(digest)
        todo.extend(referenced)
    return hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _piece(obj, package: str) -> tuple[str, tuple]:
    """(hash of ``obj``'s normalized source, what it references): code does not change while a
    process runs, so each piece is read once."""
    return hashlib.sha256(_normalized_source(obj).encode()).hexdigest(), tuple(_referenced(obj, package))


@dataclass(frozen=True)
class Artifact:
    kind: str
    key: str
    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / MANIFEST).read_text())


class ArtifactCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    @staticmethod
    def key(inputs: dict) -> str:
        """The content address of an artifact made from ``inputs`` (config, data, seed, code)."""
        return stable_hash(inputs)[:32]

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def verify(self, kind: str, key: str) -> Artifact:
        """The artifact if it is complete and every file matches its checksum; raises otherwise."""
        path = self.path(kind, key)
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"unreadable manifest: {e}") from e
        for name, digest in manifest.get("files", {}).items():
            f = path / name
            if not f.is_file():
                raise ValueError(f"file {name} is missing")
            if _sha256_file(f) != digest:
                raise ValueError(f"file {name} fails its checksum")
        return Artifact(kind, key, path)

    def exists(self, kind: str, key: str) -> bool:
        return (self.path(kind, key) / MANIFEST).is_file()

    def _discard(self, kind: str, key: str, reason: str) -> None:
        warnings.warn(f"artifact {kind}/{key} at {self.path(kind, key)} is corrupt ({reason}); recomputing",
                      CorruptArtifactWarning, stacklevel=3)
        shutil.rmtree(self.path(kind, key), ignore_errors=True)

    def write(self, kind: str, key: str, inputs: dict, produce: Callable[[Path], None]) -> Artifact:
        """Run ``produce(tmp_dir)`` to write the files, then move them into place atomically."""
        final = self.path(kind, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            produce(tmp)
            files = {p.name: _sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            manifest = {"kind": kind, "key": key, "inputs": inputs, "files": files, "created": time.time()}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
            if final.exists():  # someone else finished first, or a corrupt leftover
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return Artifact(kind, key, final)

    def get_or_compute(self, kind: str, inputs: dict, produce: Callable[[Path], None],
                       load: Callable[[Artifact], Any]) -> tuple[Any, bool]:
        """``(load(artifact), hit)``: the cached artifact if sound, else produced now and cached.

        ``produce(folder)`` writes the artifact's files into ``folder``; ``load(artifact)``
        reads them back. A corrupt artifact (bad checksum, or ``load`` raising) is
        reported with a :class:`CorruptArtifactWarning`, removed and recomputed.
        """
        key = self.key(inputs)
        if self.exists(kind, key):
            try:
                value = load(self.verify(kind, key))
                _log_lookup(kind, key, True)
                return value, True
            except Exception as e:  # noqa: BLE001 - any failure to read back means recompute
                self._discard(kind, key, str(e))
        art = self.write(kind, key, inputs, produce)
        _log_lookup(kind, key, False)
        return load(art), False

    def entries(self) -> list[dict]:
        """Every complete artifact: kind, key, size in bytes, creation time, path."""
        out = []
        if not self.root.exists():
            return out
        for kind_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for art in sorted(p for p in kind_dir.iterdir() if p.is_dir() and not p.name.startswith(".tmp-")):
                size = sum(f.stat().st_size for f in art.rglob("*") if f.is_file())
                try:
                    created = json.loads((art / MANIFEST).read_text()).get("created")
                except (OSError, ValueError):
                    created = None
                out.append({"kind": kind_dir.name, "key": art.name, "bytes": size, "created": created, "path": str(art)})
        return out

    def clear(self, kinds: Iterable[str] | None = None) -> int:
        """Remove every artifact (or those of ``kinds``), leftovers of killed runs included; returns how many."""
        if not self.root.exists():
            return 0
        n = 0
        wanted = None if kinds is None else set(kinds)
        for kind_dir in [p for p in self.root.iterdir() if p.is_dir()]:
            if wanted is not None and kind_dir.name not in wanted:
                continue
            n += sum(1 for p in kind_dir.iterdir() if p.is_dir() and not p.name.startswith(".tmp-"))
            shutil.rmtree(kind_dir)
        return n
