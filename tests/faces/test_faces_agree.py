"""The four faces over one core: the magic, the CLI, the OptimizerPanel and he.optimize give the same pruned
model as he.prune for the same arguments (they all call sparsity.prune, the one dispatch)."""
import numpy as np
import pytest

import homl_edge as he
from homl_edge import cli


def _same(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa == 0, wb == 0)          # the same weights were pruned
        assert np.allclose(wa, wb, atol=1e-5)            # and fine-tuned the same way


@pytest.mark.parametrize("channels", [False, True])
def test_four_faces_prune_alike(trained, digits, tmp_path, channels):
    from IPython.core.interactiveshell import InteractiveShell

    (x, y), (xt, yt) = digits
    x, y = x[:256], y[:256]
    k = he._keras.legacy()
    kwargs = dict(channels=0.5) if channels else dict(sparsity=0.5, criterion="magnitude")

    def seeded(fn):
        k.utils.set_random_seed(0)
        return fn()

    core = seeded(lambda: he.prune(trained, (x, y), epochs=1, progress=False, **kwargs)).model

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "homl_edge")
    ip.user_ns.update(m=trained, x=x, y=y)
    flags = "--channels 0.5" if channels else "--sparsity 0.5 --criterion magnitude"
    magic = seeded(lambda: (ip.run_line_magic("prune", f"m --train x y --epochs 1 {flags} -o out"), ip.user_ns["out"])[1])
    assert isinstance(magic, he.sparsity.Pruned)  # -o binds the result, which holds the model
    magic = magic.model

    trained.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    args = ["prune", str(tmp_path / "m.keras"), "--x", str(tmp_path / "x.npy"), "--y", str(tmp_path / "y.npy"),
            "--epochs", "1", "--quiet", "-o", str(tmp_path / "p.keras")] + flags.split()
    assert seeded(lambda: cli.main(args)) == 0
    from_cli = he.load_keras(tmp_path / "p.keras")

    technique = "channels" if channels else "prune"
    pipe = seeded(lambda: he.optimize(trained, technique, train=(x, y), sparsity=0.5, epochs=1, progress=False,
                                      mode="float32")).model
    panel = he.OptimizerPanel(trained, train=(x, y), test=(xt, yt))
    entry = seeded(lambda: panel.run(technique, "float32", sparsity=0.5, epochs=1))

    for other in (magic, from_cli, pipe, entry["keras"]):
        _same(core, other)
