"""The one child-process protocol: untrusted ``.tflite`` bytes meet a runtime only in a child, never in the kernel.

Two jobs share it. ``check`` builds a LiteRT interpreter for the bytes and runs it once on zeros (LiteRT has a
verifier, but a model that allocates and then cannot run is caught here too). ``micro`` runs inputs through
TensorFlow Lite Micro's interpreter (the ``tflite-micro`` package), which has no verifier at all, searches the
smallest tensor arena, and reports TFLM's own diagnosis from its C stderr. The child imports only numpy and the
runtime (0.2 s start-up), never TensorFlow.

Wire format, both ways: an 8-byte little-endian length and a JSON header, then the blobs whose lengths the
header lists under ``"blobs"``. A child that dies (a crash in the runtime) is reported, and the next job starts a
new one.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

from ._files import process_folder, release

ARENA_CAP = 64 * 1024 * 1024  # the arena search stops here: no microcontroller has more RAM than this
_LIMIT_ENV = "HOML_EDGE_SANDBOX_MEMORY_BYTES"  # how the parent tells the child its address-space limit


def default_memory_limit() -> int:
    """The child's memory limit (its address space, ``RLIMIT_AS``): ``$HOML_EDGE_SANDBOX_MEMORY_MB`` if set, else
    min(8 GiB, half the physical RAM). A ``.tflite`` whose tensors claim more is refused, not given the machine."""
    env = os.environ.get("HOML_EDGE_SANDBOX_MEMORY_MB")
    if env:
        return int(float(env) * 2 ** 20)
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 16 * 2 ** 30
    return int(min(8 * 2 ** 30, physical // 2))


def _mib(n: int) -> str:
    return f"{n / 2 ** 20:,.0f} MiB"


# ----------------------------------------------------------------------------------------------- wire format
def _send(stream, header: dict, blobs=()) -> None:
    header = dict(header, blobs=[len(b) for b in blobs])
    data = json.dumps(header).encode()
    stream.write(struct.pack("<Q", len(data)) + data)
    for b in blobs:
        stream.write(bytes(b))
    stream.flush()


def _receive(stream):
    head = stream.read(8)
    if len(head) < 8:
        return None, []
    (n,) = struct.unpack("<Q", head)
    header = json.loads(stream.read(n))
    blobs = [stream.read(k) for k in header.get("blobs", [])]
    return header, blobs


# ----------------------------------------------------------------------------------------------- parent side
class Sandbox:
    """A long-lived child process running this module; restarted after it dies."""

    def __init__(self, memory_bytes: int | None = None):
        self._proc = None
        self._lock = threading.Lock()
        self.memory_bytes = memory_bytes  # None: default_memory_limit() when the child starts

    def _start(self):
        self._limit = int(self.memory_bytes or default_memory_limit())
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3", **{_LIMIT_ENV: str(self._limit)})
        # a session of its own: stopping it stops the trials it forked too (one stuck in a loop would keep a core)
        self._proc = subprocess.Popen([sys.executable, "-m", "homl_edge._sandbox"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                      cwd=str(Path(__file__).resolve().parent.parent), start_new_session=True)

    @staticmethod
    def _kill(proc):
        """Stop the child and every process it forked (its process group)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (OSError, AttributeError):   # gone already; or no process groups (Windows)
            try:
                proc.kill()
            except OSError:
                pass

    def call(self, job: dict, blobs=(), timeout: float = 300.0):
        """Send one job; returns (header, blobs), or ({"ok": False, "crashed": True, ...}, []) if the child died."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            proc = self._proc
            answer = []
            timed_out = False
            try:
                _send(proc.stdin, job, blobs)
                t = threading.Thread(target=lambda: answer.append(_receive(proc.stdout)), daemon=True)
                t.start()
                t.join(timeout)
                timed_out = t.is_alive()  # decided now: once killed, the reader's late (None, []) is no answer
            except (BrokenPipeError, OSError):
                pass
            if not timed_out and answer and answer[0][0] is not None:
                return answer[0]
            self._kill(proc)
            code = proc.wait()
            self._proc = None
            if timed_out:
                return {"ok": False, "crashed": True, "limit": "time",
                        "error": f"it did not finish within the time limit of {timeout:g} s (the runtime was "
                                 "stopped; an endless loop?)"}, []
            how = f"signal {-code}" if code and code < 0 else f"exit code {code}"
            return {"ok": False, "crashed": True, "error": f"the runtime crashed on it ({how}; its memory limit "
                                                          f"is {_mib(self._limit)})"}, []

    def close(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._kill(self._proc)
                self._proc.wait()
        self._proc = None


_sandbox = Sandbox()
atexit.register(_sandbox.close)


CHECK_SECONDS = 120.0  # the time limit of one check (building and running a .tflite once): an endless loop ends here


def set_limits(memory_bytes: int | None = None, check_seconds: float | None = None) -> dict:
    """Set the child's memory limit and the time limit of a check (None: the defaults); returns the previous
    settings (``set_limits(**previous)`` restores them). The next job starts a new child under them."""
    global CHECK_SECONDS
    previous = {"memory_bytes": _sandbox.memory_bytes, "check_seconds": CHECK_SECONDS}
    _sandbox.memory_bytes = memory_bytes
    CHECK_SECONDS = float(check_seconds or 120.0)
    _sandbox.close()
    return previous


def check(data: bytes, timeout: float | None = None) -> dict:
    """{"ok": True, "inputs": n} when LiteRT builds and runs the bytes, else {"ok": False, "error": ...}."""
    header, _ = _sandbox.call({"job": "check"}, [data], timeout=timeout or CHECK_SECONDS)
    return header


def run_micro(data: bytes, inputs: list, *, n_outputs: int = 1, arena_size: int | None = None,
              find_arena: bool = True, timeout: float = 300.0) -> dict:
    """Run quantized ``inputs`` (one array per model input, batch first) through TFLM in the child.

    Returns {"ok": True, "outputs": [arrays], "arena_bytes": int | None, "arena_tried": int} or {"ok": False,
    "kind": "arena" | "op" | "type" | "crash" | "other", "error": ..., "log": ...}.
    """
    import numpy as np

    blobs = [data] + [_npy_bytes(np.ascontiguousarray(x)) for x in inputs]
    job = {"job": "micro", "arena_size": arena_size, "find_arena": find_arena, "n_outputs": n_outputs,
           "model_bytes": len(data)}
    header, out = _sandbox.call(job, blobs, timeout=timeout)
    if header.get("crashed"):
        header["kind"] = "crash"
        return header
    if header.get("ok"):
        header["outputs"] = [np.load(io.BytesIO(b), allow_pickle=False) for b in out]
    return header


def _npy_bytes(x) -> bytes:
    """An array as the bytes of a ``.npy`` file (no pickles): how arrays cross the pipe, both ways."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------- child side
def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


def _check(data: bytes) -> dict:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interp = None
    try:
        interp = Interpreter(model_content=data, num_threads=1)
        interp.allocate_tensors()
    except MemoryError:
        return _out_of_memory()
    except Exception as e:  # LiteRT's verifier or allocator said no
        if interp is not None and _over_limit(interp):
            return _out_of_memory(_first_line(e))
        return {"ok": False, "error": _first_line(e)}
    try:
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        interp.invoke()
    except MemoryError:
        return _out_of_memory()
    except Exception as e:  # it allocates but cannot run (e.g. an operand that lacks data): not usable
        return {"ok": False, "error": f"it loads but cannot run: {_first_line(e)}"}
    return {"ok": True, "inputs": len(interp.get_input_details())}


def _memory_limit() -> int | None:
    v = os.environ.get(_LIMIT_ENV)
    return int(v) if v else None


def _over_limit(interp) -> bool:
    """Whether the tensors the model declares, on top of what this child already maps, exceed its memory limit
    (then a failed allocation was the limit's doing)."""
    import numpy as np

    limit = _memory_limit()
    if not limit:
        return False
    try:
        claimed = sum(int(np.prod(d["shape"], dtype=np.float64)) * np.dtype(d["dtype"]).itemsize
                      for d in interp.get_tensor_details())
        with open("/proc/self/status") as f:
            mapped = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    except Exception:
        return False
    return claimed + mapped > limit


def _out_of_memory(detail: str = "") -> dict:
    """The refusal; LiteRT's own words are added when they say more than an exception's class name."""
    limit = _memory_limit()
    return {"ok": False, "limit": "memory",
            "error": f"its tensors need more memory than the sandbox's memory limit of {_mib(limit or 0)} allows"
                     + (f" ({detail})" if " " in detail else "")}


@contextlib.contextmanager
def _c_stderr_to(path):
    """TFLM reports its errors (a missing kernel, a too-small arena, a type) on the C stderr: keep them."""
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _construct(data, arena):
    from tflite_micro.python.tflite_micro import runtime

    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        return runtime.Interpreter.from_bytes(data, arena_size=int(arena))


def _invoke(data, arena, samples):
    interp = _construct(data, arena)
    for i, s in enumerate(samples):
        interp.set_input(s, i)
    interp.invoke()
    return interp


def _classify(log: str, error: str):
    """(kind, what) from TFLM's C stderr: a missing kernel, a tensor type a kernel lacks, or a too-small arena."""
    import re

    text = log + "\n" + error
    m = re.search(r"Didn't find op for builtin opcode '(\w+)'", text)
    if m:
        return "op", m.group(1)
    if re.search(r"Failed to resize buffer|[Aa]rena size is too small|too small for all buffers|"
                 r"Failed to allocate memory|Requested: \d+", log):
        return "arena", None
    node = re.search(r"Node (\w+) \(number \d+\) failed to prepare", log)
    t = (re.search(r"(Input type: \w+ with filter type: \w+) not supported", log)
         or re.search(r"Type (\w+) \(\d+\) (?:is )?not supported", log)
         or re.search(r"(\w+->type == .*?) was not true", log)
         or re.search(r"[Uu]nsupported (?:tensor |data )?type:? ?(\w+)", log))
    if t:
        return "type", t.group(1) + (f" (in {node.group(1)})" if node else "")
    if node:
        return "other", node.group(1)
    return "other", None


def grow_arena(attempt, too_small, start: int, cap: int = ARENA_CAP, factor: int = 4) -> tuple[int, object]:
    """Try ``attempt(start)``; while its error is one that ``too_small(error)`` blames on the arena, try
    ``factor`` times more, up to ``cap``. Returns (the last size tried, its error or None)."""
    size = int(start)
    error = attempt(size)
    while error is not None and size < cap and too_small(error):
        size = min(cap, size * factor)
        error = attempt(size)
    return size, error


def smallest_arena(works, hi: int, step: int = 16) -> int:
    """Bisect for the smallest multiple of ``step`` at which ``works(size)`` holds, given that it holds at ``hi``
    (and that a larger arena never fails where a smaller one works). Within ``step`` bytes of the true minimum."""
    lo, top = 0, int(hi)
    while top - lo > step:
        mid = (lo + top) // 2 // step * step
        if mid <= lo:
            break
        if works(mid):
            top = mid
        else:
            lo = mid
    return top


_CRASH = "TFLM crashed"


def _forked(fn):
    """``fn()`` (None or an error string) run in a forked copy of this child; a signal becomes an error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the forked copy)
        os.close(r)
        try:
            err = fn()
            os.write(w, b"K" if err is None else ("E" + err).encode(errors="replace")[:4000])
        except BaseException as e:
            os.write(w, ("E" + _first_line(e)).encode(errors="replace")[:4000])
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"{_CRASH} (signal {os.WTERMSIG(status)})"
    text = b"".join(chunks).decode(errors="replace")
    return None if text == "K" else (text[1:] or "TFLM failed")


def _micro(job: dict, blobs: list) -> tuple[dict, list]:
    import numpy as np

    data = blobs[0]
    inputs = [np.load(io.BytesIO(b), allow_pickle=False) for b in blobs[1:]]
    first = [x[:1] for x in inputs]
    hi = int(job.get("arena_size") or max(64 * 1024, 4 * len(data)))
    # TFLM's messages go to a file in a folder that a crash of this child leaves to the next child's sweep
    d = process_folder("homl-edge-micro-")
    try:
        logf = Path(d) / "stderr.txt"

        def attempt(arena):
            def once():
                try:
                    with _c_stderr_to(logf):
                        _invoke(data, arena, first)
                    return None
                except Exception as e:
                    return _first_line(e)

            # each trial in a forked child: TFLM's LSTM kernel dereferences a null state tensor (signal 11) when
            # the arena is a little too small, so a trial that crashes is one that failed, not the end of the job
            return _forked(once)

        def too_small(error):
            return error.startswith(_CRASH) or _classify(logf.read_text(errors="replace"), error)[0] == "arena"

        # grow the arena while TFLM says it is too small (up to a cap), unless the caller fixed its size
        hi, error = grow_arena(attempt, too_small, hi, cap=hi if job.get("arena_size") else ARENA_CAP)
        if error is not None:
            log = logf.read_text(errors="replace")
            kind, what = _classify(log, error)
            if error.startswith(_CRASH):
                last = [line.strip() for line in log.splitlines() if line.strip()][-1:]
                kind, error = "crash", error + (f" at every arena up to {hi:,} bytes; TFLM's last words: "
                                                f"{last[0][:200]!r}" if last else f" at every arena up to {hi:,} bytes")
            return {"ok": False, "kind": kind, "what": what, "error": error, "arena_tried": hi,
                    "log": log[-2000:]}, []
        arena_bytes = None
        if job.get("find_arena"):
            arena_bytes = smallest_arena(lambda n: attempt(n) is None, hi)
        with _c_stderr_to(logf):
            interp = _construct(data, hi)
            outs = [[] for _ in range(int(job.get("n_outputs", 1)))]
            for i in range(len(inputs[0])):
                for j, x in enumerate(inputs):
                    interp.set_input(x[i:i + 1], j)
                if hasattr(interp, "reset"):
                    interp.reset()  # recurrent state (variable tensors) starts at 0 for every sample, as in LiteRT
                interp.invoke()
                for k in range(len(outs)):
                    outs[k].append(np.array(interp.get_output(k))[0])
    finally:
        release(d)
    result = [_npy_bytes(np.stack(o)) for o in outs]
    return {"ok": True, "arena_bytes": arena_bytes, "arena_tried": hi}, result


def main() -> None:
    limit = _memory_limit()
    if limit:  # a hostile file may claim gigabytes of tensors: the child gets this much address space, no more
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    # the protocol gets a private copy of fd 1; whatever a runtime prints to the C stdout goes nowhere
    stdin, stdout = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    while True:
        job, blobs = _receive(stdin)
        if job is None:
            return
        if job.get("job") == "check":
            _send(stdout, _check(blobs[0]))
        elif job.get("job") == "micro":
            try:
                header, out = _micro(job, blobs)
            except Exception as e:
                header, out = {"ok": False, "kind": "other", "error": _first_line(e)}, []
            _send(stdout, header, out)
        else:
            _send(stdout, {"ok": False, "error": f"unknown job {job.get('job')!r}"})


if __name__ == "__main__":
    main()
