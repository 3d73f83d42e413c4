"""Re-execute the chapter notebooks in place (`make notebooks`), keeping their outputs for readers on GitHub.

Usage: python scripts/run_notebooks.py [--no-write] [NAME ...]   (default: every notebooks/*.ipynb)
Prints each notebook's wall time; the notebooks print their own kernel peak memory in their last cell.
"""
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

root = Path(__file__).resolve().parent.parent / "notebooks"
args = [a for a in sys.argv[1:] if a != "--no-write"]
write = "--no-write" not in sys.argv  # the benchmarks run the notebooks without touching the committed copies
names = args or sorted(p.stem for p in root.glob("*.ipynb"))
failed = []
for name in names:
    path = root / f"{name.removesuffix('.ipynb')}.ipynb"
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(root)}}).execute()
    except Exception as e:
        failed.append(name)
        print(f"{name}: FAILED after {time.perf_counter() - t0:.0f} s: {str(e).strip().splitlines()[-1][:300]}")
        continue
    if write:
        nbformat.write(nb, path)
    last = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    print(f"{name}: {time.perf_counter() - t0:.0f} s wall | {last.strip()}")
sys.exit(1 if failed else 0)
