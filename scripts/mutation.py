"""`make mutation`: mutation-test the pure-Python parts of the core and print the score.

mutmut (configured in pyproject.toml, [tool.mutmut]) mutates the functions named below, one change at a time
(a `<` for a `<=`, a constant, a dropped call, ...), and runs tests/unit against each mutant: a mutant
the tests do not notice "survives". The score is the share of mutants killed. Survivors are listed with the
command that shows their diff. Usage: python scripts/mutation.py [--min PERCENT]
"""
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

FUNCTIONS = {
    "homl_edge._quantizer": ["parse_precision"],
    "homl_edge._modes": ["mode_spec"],
    "homl_edge._cache": ["content_key", "_versions_key", "versions", "cache_dir"],
    "homl_edge.report": ["format_value", "human_bytes", "table_from_rows", "choose", "xǁTableǁ_repr_html_"],
    "homl_edge.sparsity": ["_parse_structure", "_masks", "filter_scores", "channels_to_keep", "m_by_n_holds",
                           "flat_indices"],
    "homl_edge._sandbox": ["grow_arena", "smallest_arena", "_classify"],
    "homl_edge.micro": ["fits_on", "resolver_method", "arena_to_declare"],
    "homl_edge._workers": ["check_tf_config", "tf_config"],
}
root = Path(__file__).resolve().parent.parent
mutmut = [sys.executable, "-m", "mutmut"]
minimum = float(sys.argv[sys.argv.index("--min") + 1]) if "--min" in sys.argv else 0.0
names = [f"{module}.{fn if fn.startswith('x') and 'ǁ' in fn else 'x_' + fn}__mutmut_*"
         for module, fns in FUNCTIONS.items() for fn in fns]
run = subprocess.run([*mutmut, "run", *names], cwd=root, capture_output=True, text=True)
if run.returncode:
    sys.exit(f"mutmut run failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
results = subprocess.run([*mutmut, "results", "--all", "true"], cwd=root, capture_output=True, text=True,
                         check=True).stdout
pattern = re.compile("|".join(re.escape(n[:-1]) + r"\d+" for n in names))
status = {}
for line in results.splitlines():
    name, _, state = line.strip().rpartition(": ")
    if pattern.fullmatch(name):
        status[name] = state
counts = Counter(status.values())
killed = counts["killed"] + counts["timeout"]
total = len(status)
per_function = Counter()
for name, state in status.items():
    if state not in ("killed", "timeout"):
        per_function[name.split("__mutmut_")[0]] += 1
print(f"mutants: {total} in {len(names)} functions; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
for name in sorted(n for n, s in status.items() if s not in ("killed", "timeout")):
    print(f"  {status[name]:>10}  {name}   (python -m mutmut show {name})")
score = 100 * killed / total if total else 0.0
print(f"mutation score: {killed}/{total} = {score:.1f}% killed")
sys.exit(0 if total and score >= minimum else 1)
