"""Several chapters executed in turn in one kernel (the test suite's real-data shapes).

A chapter's own kernel spends 6-7 s of a smoke run starting and importing the stack (torch, transformers,
scikit-learn, POT): more than most of its cells. :class:`SharedKernel` starts one kernel and lends it to
:func:`scoring_lab.book.chapters.execute_chapter` chapter after chapter. Before each chapter
:meth:`SharedKernel.prepare` clears what the previous one left: its names (``%reset -f``), its figures, its
working folder and its ``SCORING_LAB_*`` environment (set again from this process's, as a new kernel would
inherit them). What it cannot clear is module state (an imported module is not imported again), so the book
itself (``scoring-lab book execute``) gives every chapter its own kernel, and so do the test suite's smoke
executions: a chapter that leaned on another's module state would fail there.

Usage::

    with SharedKernel() as kernel:
        for chapter in chapters:
            execute_chapter(chapter, out, profile="smoke", kernel=kernel)
"""
from __future__ import annotations

import json
import os
from pathlib import Path

ENV_PREFIX = "SCORING_LAB_"   # the variables a chapter reads (results, cache, cache log)


def _manager_class():
    from jupyter_client import AsyncKernelManager
    from traitlets import List

    class LendingKernelManager(AsyncKernelManager):
        """An asynchronous kernel manager that keeps the clients it hands out, so that they can be closed after
        each chapter: nbclient leaves a client's channels open on a kernel it does not own."""
        lent = List()

        def client(self, **kwargs):
            client = super().client(**kwargs)
            self.lent.append(client)
            return client

        def close_clients(self) -> None:
            while self.lent:
                self.lent.pop().stop_channels()

    return LendingKernelManager


def preamble(cwd: str | Path, environ: dict[str, str] | None = None) -> str:
    """The code run in the shared kernel before a chapter: the previous chapter's names, figures, working folder
    and ``SCORING_LAB_*`` variables replaced by a fresh kernel's (``environ``: this process's by default)."""
    environ = dict(os.environ if environ is None else environ)
    wanted = {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
    return "\n".join([
        "get_ipython().run_line_magic('reset', '-f')",
        "import os as _os, sys as _sys",
        f"_wanted = {json.dumps(wanted)}",
        f"for _k in [_k for _k in _os.environ if _k.startswith({ENV_PREFIX!r}) and _k not in _wanted]:",
        "    del _os.environ[_k]",
        "_os.environ.update(_wanted)",
        f"_os.chdir({str(cwd)!r})",
        "if 'matplotlib.pyplot' in _sys.modules:",
        "    _sys.modules['matplotlib.pyplot'].close('all')",
        "get_ipython().run_line_magic('reset', '-f')",
    ])


class SharedKernel:
    """One ``python3`` kernel lent to chapter after chapter (see the module's docstring).

    ``km`` is the kernel manager papermill's client is given; the kernel starts on the first
    :meth:`prepare` and is shut down on leaving the ``with`` block."""

    def __init__(self, kernel_name: str = "python3"):
        self.kernel_name = kernel_name
        self.km = None
        self.chapters = 0   # how many chapters it was prepared for

    def __enter__(self) -> "SharedKernel":
        self.km = _manager_class()(kernel_name=self.kernel_name)
        return self

    def prepare(self, cwd: str | Path | None = None) -> None:
        """Start the kernel (first call) or restart it (if the last chapter killed it), then clear it for the
        next chapter, in ``cwd`` (default: this process's working folder). Raises if the preamble fails."""
        import nbformat
        from jupyter_core.utils import run_sync
        from nbclient import NotebookClient

        cwd = str(Path(cwd or os.getcwd()).resolve())
        if self.km.has_kernel and not run_sync(self.km.is_alive)():
            run_sync(self.km.restart_kernel)(now=True)   # as it was started: same folder, same environment
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(preamble(cwd))])
        try:
            NotebookClient(nb, km=self.km, kernel_name=self.kernel_name).execute(cwd=cwd)
        finally:
            self.close_clients()
        self.chapters += 1

    def close_clients(self) -> None:
        """Close the channels of every client opened on the kernel (papermill's leaves them open)."""
        if self.km is not None:
            self.km.close_clients()

    def __exit__(self, *exc) -> None:
        from jupyter_core.utils import run_sync

        if self.km is None:
            return
        self.close_clients()
        if self.km.has_kernel:
            run_sync(self.km.shutdown_kernel)(now=True)   # its connection files and sockets with it
        self.km = None
