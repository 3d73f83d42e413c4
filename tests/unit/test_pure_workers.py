"""Pure units (no TensorFlow) of gpu and _workers: TF_CONFIG checks and messages.

At exact values: these are the functions `make mutation` mutates, and tests/unit is what has to notice.
"""
import numpy as np
import pandas as pd
import pytest

from homl_edge import _sandbox, micro, quantization as q, report, sparsity
from homl_edge.errors import HomlEdgeError


def test_tf_config_checks():
    import json

    from homl_edge import gpu

    assert json.loads(gpu.tf_config(["h:1"], 0)) == {"cluster": {"worker": ["h:1"]}, "task": {"type": "worker",
                                                                                              "index": 0}}
    assert gpu.check_tf_config({"cluster": {"worker": ["[::1]:80"]}, "task": {"type": "worker", "index": 0}})
    for bad, message in [
        ({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": -1}}, r"index -1 is outside"),
        ({"cluster": {"worker": ["h:0"]}, "task": {"type": "worker", "index": 0}}, "is not host:port"),
        ({"cluster": {"worker": ["h:65536"]}, "task": {"type": "worker", "index": 0}}, "is not host:port"),
        ({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}, "non-empty list"),
        ({"cluster": {"chief": ["a:1", "b:1"], "worker": ["c:1"]}, "task": {"type": "worker", "index": 0}},
         "one chief"),
        ({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}, "outside"),
        ({"cluster": {"worker": ["h:1"]}, "task": {"index": 0}}, 'needs this process'),
        ([], 'needs a "cluster"'),
    ]:
        with pytest.raises(HomlEdgeError, match=message):
            gpu.check_tf_config(bad)


def test_tf_config_messages_in_full():
    import json

    from homl_edge import gpu

    ok = json.dumps({"cluster": {"chief": ["c:1"], "worker": ["w:1"], "ps": ["p:1"], "evaluator": ["e:1"]},
                     "task": {"type": "ps", "index": 0}})
    assert gpu.check_tf_config(ok)["task"] == {"type": "ps", "index": 0}  # a string is parsed; every task type known
    assert gpu.check_tf_config(json.dumps({"cluster": {"worker": ["w:1"], "evaluator": ["e:2"]},
                                           "task": {"type": "evaluator", "index": 0}}))["task"]["type"] == "evaluator"
    cases = [
        ("[1", r"^TF_CONFIG is not JSON \(Expecting ',' delimiter at character 2\)$"),
        ("{}", r'^TF_CONFIG needs a "cluster": \{"worker": \["host:port", \.\.\.\]\}$'),
        ('{"cluster": {"boss": ["a:1"]}}', r"^TF_CONFIG cluster has an unknown task type 'boss': chief, worker, ps or "
                                            r"evaluator$"),
        ('{"cluster": {"worker": "a:1"}}', r"^TF_CONFIG cluster 'worker' must be a non-empty list of 'host:port'$"),
        ('{"cluster": {"worker": ["a"]}}', r"^TF_CONFIG address 'a' is not host:port \(e\.g\. 'localhost:12345'\)$"),
        ('{"cluster": {"worker": ["a:1", "a:1"]}}', r"^TF_CONFIG lists 'a:1' twice: every task needs its own port$"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}',
         r'^TF_CONFIG needs this process\'s "task": \{"type": "worker", "index": N\}$'),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
         r"^TF_CONFIG task type 'chief' is not in the cluster \(worker\)$"),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
         r"^TF_CONFIG task index 2 is outside the 2 worker address\(es\) \(0 to 1\)$"),
        ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}',
         r"^TF_CONFIG may name one chief, not several$"),
    ]
    for text, message in cases:
        with pytest.raises(HomlEdgeError, match=message):
            gpu.check_tf_config(text)
    assert json.loads(gpu.tf_config(" a:1 , b:2 ", 1, task_type="worker")) == {
        "cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert json.loads(gpu.tf_config(["a:1"], 0, chief=" c:9 "))["cluster"] == {"chief": ["c:9"], "worker": ["a:1"]}
    assert list(json.loads(gpu.tf_config(["a:1"], 0, chief="c:9"))["cluster"]) == ["chief", "worker"]
