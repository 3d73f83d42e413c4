"""Writing files all or nothing: the one atomic write of the package (a temporary name in the same folder, then a
rename), for bytes (``.tflite`` files, C arrays, the cache), for files a library writes itself (Keras' ``save``) and
for whole folders (web exports); and the package's temporary folders that live as long as their process
(:func:`process_folder`)."""
from __future__ import annotations

import atexit
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


# ------------------------------------------------------------------------ temporary folders of a process
_roots: dict = {}    # (temp folder, prefix) -> (this process's root folder there, its held .lock fd or None)
_made: set = set()   # the folders process_folder made in this process and that are not released yet


def process_folder(prefix: str) -> str:
    """A new folder that lives as long as this process: removed by :func:`release` or when the process ends
    normally. It is made inside this process's root folder ``{prefix}*`` in the temp folder (one per prefix, so one
    open file however many folders), beside which a ``.lock`` file is held (``flock``) as long as the process runs.
    A process that is killed cannot remove its folders (a kernel stopped with ``now=True``, as nbval and a forced
    restart stop it; a sandbox child that crashed; the out-of-memory killer), but the operating system releases its
    locks: so the first folder of each prefix that a process makes removes the roots of that prefix whose lock it can
    take, those of processes that no longer run, whatever their pid or container (1.7 GB of exports had piled up over
    a day of test runs). Where there is no ``flock`` (Windows, some network file systems) the root is made unlocked
    and nothing is swept."""
    tmp = tempfile.gettempdir()
    if (tmp, prefix) not in _roots:
        _roots[(tmp, prefix)] = _new_root(Path(tmp), prefix)
    folder = tempfile.mkdtemp(dir=_roots[(tmp, prefix)][0])
    _made.add(folder)
    return folder


def _new_root(tmp: Path, prefix: str) -> tuple[str, int | None]:
    try:
        import fcntl
    except ImportError:
        return tempfile.mkdtemp(prefix=prefix, dir=tmp), None
    sweep(tmp, prefix)
    root = tempfile.mkdtemp(prefix=prefix, dir=tmp)
    # locked before it takes its name, so that a sweep never finds it unlocked while this process runs
    fd, pending = tempfile.mkstemp(prefix=Path(root).name, suffix=".pending", dir=tmp)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:   # a temp folder without locks: kept unlocked, never swept
        os.close(fd)
        os.unlink(pending)
        return root, None
    os.replace(pending, root + ".lock")
    return root, fd


def sweep(tmp: Path, prefix: str) -> None:
    """Remove the roots ``{prefix}*`` in ``tmp`` whose ``.lock`` this user owns and nobody holds (POSIX)."""
    import fcntl
    import stat

    for lock in tmp.glob(f"{prefix}*.lock"):
        root = lock.with_suffix("")
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_uid != os.getuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:   # held: its process runs
                continue
            try:
                if stat.S_ISDIR(os.lstat(root).st_mode):   # a folder, not a link to one
                    shutil.rmtree(root, ignore_errors=True)
            except OSError:
                pass
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)


def release(folder: str) -> None:
    """Remove a folder that :func:`process_folder` made in this process (any other path is left alone)."""
    if folder in _made:
        _made.discard(folder)
        shutil.rmtree(folder, ignore_errors=True)


@atexit.register
def _release_all():
    for root, fd in _roots.values():
        shutil.rmtree(root, ignore_errors=True)
        if fd is not None:
            Path(root + ".lock").unlink(missing_ok=True)
            os.close(fd)
    _roots.clear()
    _made.clear()


def _forget_in_child():
    """A forked child (the sandbox's trials, multiprocessing's workers) owns none of its parent's folders: it neither
    releases them nor removes them at its exit (the inherited lock stays held until the child ends)."""
    _roots.clear()
    _made.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
