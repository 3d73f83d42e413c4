"""Writing files all or nothing: the one atomic write of the package (a temporary name in the same folder, then a
rename), for bytes (``.tflite`` files, C arrays, the cache), for files a library writes itself (Keras' ``save``) and
for whole folders (web exports)."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import HomlEdgeError


def _checked_target(path, overwrite: bool) -> tuple[Path, Path]:
    """``path`` and its folder, after the checks every writer shares (one clear line each)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise HomlEdgeError(f"{p} is a folder; give a file name such as {p / 'model.tflite'}")
    if p.exists() and not overwrite:
        raise HomlEdgeError(f"{p} exists already; pass {{overwrite=True}} to replace it", param="overwrite")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise HomlEdgeError(f"the folder {parent} does not exist: create it first")
    if not os.access(parent, os.W_OK):
        raise HomlEdgeError(f"cannot write into {parent}: permission denied")
    return p, parent


@contextlib.contextmanager
def atomic_path(path, *, overwrite: bool = False, suffix: str = ".part"):
    """A temporary path (not yet existing) beside ``path``: whatever the block writes there is renamed onto ``path``
    when it ends, and removed if it raises. For writers that want a path, not bytes (Keras' ``model.save``)."""
    p, parent = _checked_target(path, overwrite)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=parent)
    except OSError as e:
        raise HomlEdgeError(f"cannot write into {parent}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(tmp)  # some writers (Keras) refuse to write over an existing file
    try:
        yield Path(tmp)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename: all or nothing."""
    p = Path(path).expanduser()
    with atomic_path(p, overwrite=overwrite) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return p


def replace_folder(new: Path, out: Path) -> None:
    """Put the finished folder ``new`` in place of ``out``: the old one is moved aside first and deleted only once
    the new one is in place (put back if that fails)."""
    if not out.exists():
        os.replace(new, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    os.replace(out, aside / "old")
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(aside / "old", out)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)
