"""A content-addressed artifact cache for expensive results (trained models, predictions).

An artifact is a folder ``<root>/<kind>/<key>/`` holding the producer's files and a
``manifest.json`` with the SHA-256 of each file and the inputs that made the key.
The key is the SHA-256 of those inputs: the producer's config, a fingerprint of
its data, its seed and a code version (a hash of the source of the modules that
compute it), so changing any of them makes a new artifact rather than reusing a
stale one.

Writes are atomic: the producer writes into a temporary folder beside the final
one, which is renamed into place only once complete, so a killed run leaves no
half-written artifact. An artifact that fails its checksums, or whose loader
raises, is reported (a warning naming it), removed and recomputed.

The root is ``$SCORING_LAB_CACHE``, else ``.cache/scoring-lab`` at the project root
when run inside the project, else ``~/.cache/scoring-lab``.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .paths import project_root

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


def code_version(*modules: ModuleType | Callable) -> str:
    """A short hash of the source of ``modules`` (or of the modules defining the given functions)."""
    h = hashlib.sha256()
    for m in modules:
        mod = m if isinstance(m, ModuleType) else inspect.getmodule(m)
        h.update(inspect.getsource(mod).encode())
    return h.hexdigest()[:16]


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
