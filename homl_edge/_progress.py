"""How the core reports progress on long work without knowing who is watching.

A core function takes ``progress``: ``False``/``None`` (silent), ``True`` (the default reporter that a face has
installed: ``import homl_edge`` installs tqdm's, which is a widget in Jupyter and text elsewhere), or any callable
``make(total, desc)`` returning a bar with ``update(n)``, ``set_postfix(dict)`` and ``close()``, which is the API
of ``tqdm.auto.tqdm`` itself. The core never imports tqdm.
"""
from __future__ import annotations

_default = {"factory": None}


class _Silent:
    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


def install(factory) -> None:
    """Make ``factory(total, desc)`` the reporter behind ``progress=True`` (None: silent)."""
    _default["factory"] = factory


def bar(progress, total, desc: str):
    """A progress bar for ``total`` steps (None: unknown), or a silent one."""
    if progress is True:
        progress = _default["factory"]
    if not progress:
        return _Silent()
    if not callable(progress):
        from .errors import HomlEdgeError

        raise HomlEdgeError(f"progress must be True, False or a callable make(total, desc); got "
                            f"{type(progress).__name__}")
    return progress(total, desc)
