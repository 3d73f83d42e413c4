#!/usr/bin/env bash
# The whole test suite, what `make test` runs after installing both environments:
#   1. the main environment (.venv, the lock): unit tests, every chapter under nbval, the browser tests, in three
#      pytest-xdist workers (HOML_EDGE_TEST_WORKERS) on the two cores: a test that waits on a browser, a kernel or a
#      child process leaves a core idle, and a third worker fills it (27 November, same machine, same hour: the main
#      suite 765 s with three workers, 821 s with two; both environments 1,111 s);
#   2. the current environment (.venv-current: Python 3.12, the newest TensorFlow, numpy 2): the unit tests.
# One after the other, each with both cores. The suite is CPU-bound: measured on 2 cores from fresh clones (the
# README's table), the main suite took 628 s to 973 s and both 903 s to 1,408 s in the last nine plain runs; side by
# side (26 November), the second at nice 10, the main suite took 19 min 40 s instead of 14 min 36 s. The chapters' claim cells run beside a busy
# core of their own (conftest.py). The second's output goes to test-artifacts/current-env.log and its summary is printed at
# the end; the exit code fails if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
CURRENT_LOG=test-artifacts/current-env.log
# The unit tests that do not depend on the lock itself (its pins, the Binder build) and need no browser or chapter,
# and the TF.js export predicting like Keras in Chromium (the converter there has no TensorFlow-2.19 dependencies).
CURRENT_ARGS=(tests -m "not notebook and not lock" -k "not browser or test_tfjs_export_predicts_like_keras_in_chromium"
              -p no:cacheprovider -q --durations=15
              --ignore=tests/e2e/test_binder.py --ignore=tests/faces/test_panels_in_any_order.py --ignore=tests/e2e/test_chapter_outputs.py
              --ignore=tests/e2e/test_chapter_prose.py)
WORKERS=${HOML_EDGE_TEST_WORKERS:-3}
# One intra-op thread per TensorFlow process. Three workers with TensorFlow's default pool (a thread per core) put six
# compute threads on two cores, and the pool's threads spin while they wait for work. 27 November, same machine:
# test_keras + test_training + test_sparsity in three workers, two pairs interleaved, took 201 s and 195 s wall,
# 305 and 297 CPU-s with the default; 165 s and 161 s, 252 and 248 CPU-s with one (a sixth less). The whole suite in
# the working tree: main 696 s, both 1,002 s, 1,807 CPU-s, against 765 s, 1,111 s and 2,022 CPU-s with the default
# three hours before (other code then, so not a pair). The chapters that measure threads set their own
# (thread_scaling runs each setting in its own process); set TF_NUM_INTRAOP_THREADS to run the suite with another value.
export TF_NUM_INTRAOP_THREADS=${TF_NUM_INTRAOP_THREADS:-1}
start=$(date +%s)
# a file (a chapter's cells, a test module) at a time per worker; --durations shows where the time goes
HOML_EDGE_REQUIRE_TOOLS=1 .venv/bin/python -m pytest -n "$WORKERS" --dist loadfile --durations=25 ${PYTEST_ARGS:-} 2>&1 \
  | tee test-artifacts/main.log
main_rc=${PIPESTATUS[0]}
main_end=$(date +%s)
echo "=== the unit tests in the current environment (.venv-current), $WORKERS workers: log in $CURRENT_LOG"
CURRENT_CACHE=$(mktemp -d -t homl-edge-cache-XXXXXXXX)   # its own conversion cache, removed after the run
HOML_EDGE_CACHE=$CURRENT_CACHE .venv-current/bin/python -m pytest -n "$WORKERS" --dist loadfile "${CURRENT_ARGS[@]}" \
    -o addopts="-ra --strict-markers -p no:randomly" > "$CURRENT_LOG" 2>&1
echo $? > test-artifacts/current-env.rc
rm -rf "$CURRENT_CACHE"
cur_rc=$(cat test-artifacts/current-env.rc 2>/dev/null || echo 1)
end=$(date +%s)
echo
echo "=== current environment ($(.venv-current/bin/python -c 'import sys, tensorflow as tf, numpy as np, keras; print(f"Python {sys.version.split()[0]}, TensorFlow {tf.__version__}, Keras {keras.__version__}, numpy {np.__version__}")' 2>/dev/null)): last lines of $CURRENT_LOG"
tail -n 15 "$CURRENT_LOG"
echo "main environment: $((main_end - start)) s; both: $((end - start)) s"
# one closing line for both runs: the counts of the two pytest summaries added up
count() { tail -n 3 "$1" | grep -oE "[0-9]+ $2" | tail -n 1 | grep -oE "^[0-9]+" || echo 0; }
passed=$(( $(count test-artifacts/main.log passed) + $(count "$CURRENT_LOG" passed) ))
failed=$(( $(count test-artifacts/main.log failed) + $(count "$CURRENT_LOG" failed) + $(count test-artifacts/main.log error) + $(count "$CURRENT_LOG" error) ))
skipped=$(( $(count test-artifacts/main.log skipped) + $(count "$CURRENT_LOG" skipped) ))
if [ "$main_rc" != 0 ] || [ "$cur_rc" != 0 ]; then
  echo "main environment exit $main_rc, current environment exit $cur_rc"
  [ "$failed" -gt 0 ] || failed=1
  echo "total: $passed passed, $failed failed, $skipped skipped"
  exit 1
fi
echo "total: $passed passed, $failed failed, $skipped skipped"
