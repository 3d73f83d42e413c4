"""Send a model to a browser (TF.js Layers format + an offline web page) or a microcontroller (a C array)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import field
from pathlib import Path

import numpy as np

from . import _keras, _tf
from ._files import atomic_write, replace_folder
from ._result import Record, Result, result
from ._widgets import widgets_dir
from .errors import HomlEdgeError, first_line
from .lite import LiteModel, require_lite

TFJS_VERSION = "4.22.0"
TFJS_QUANTIZE = (None, "float16", "uint8", "uint16")
PAGE_FILES = ("index.html", "app.js", "style.css", "sw.js", "manifest.webmanifest", "icon.svg")
APP_SHELL = ("style.css", "icon.svg", "pad.js")  # widgets/page/ files both pages (TF.js, LiteRT.js) copy as they are


@result
class TfjsExport(Result):
    """What :func:`export_tfjs` wrote: the folder, its files and sizes (a frozen result; ``to_frame()`` is the
    file table). ``served`` is a path below a Jupyter server's base URL given at construction; a notebook that
    shows the export registers its page once and keeps that path itself (homl_edge/_display.py)."""

    path: Path
    quantize: str | None
    files: dict = field(default_factory=dict)
    page: bool = False
    served: str | None = None

    @property
    def weights_bytes(self) -> int:
        return sum(v for k, v in self.files.items() if k.endswith(".bin"))

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({"bytes": self.files})

    @property
    def preview(self) -> Path | None:
        """A screenshot of the page (taken at export when a Chromium was at hand), for saved notebooks."""
        p = self.path / "preview.png"
        return p if p.is_file() else None

    def _html_parts(self) -> tuple[str, str]:
        """A heading line, and the file table (no page) or the page's screenshot taken at export (or a note)."""
        import base64
        import html as html_mod

        from .report import Table

        rows = [{"file": k, "bytes": v} for k, v in self.files.items()]
        head = (f"<p>TF.js export in <code>{html_mod.escape(str(self.path))}</code> "
                f"({self.quantize or 'float32'} weights, {self.weights_bytes:,} bytes)</p>")
        if not self.page:
            return head, Table(rows)._repr_html_()
        if self.preview is not None:
            data = base64.b64encode(self.preview.read_bytes()).decode()
            return head, (f"<img src='data:image/png;base64,{data}' alt='the exported page' "
                          "style='max-width:720px;border:1px solid #d0d7de'>")
        return head, "<p><i>the live page appears here when this notebook runs in Jupyter</i></p>"

    def _repr_html_(self):
        """What a saved notebook shows (GitHub, nbviewer): the files, or the screenshot taken at export (or a note).
        In a running notebook the faces show the live page instead (homl_edge/_display.py)."""
        return "".join(self._html_parts())

    def __repr__(self):
        return (f"<TfjsExport {self.path} ({self.quantize or 'float32'} weights, {self.weights_bytes:,} bytes; "
                f"{len(self.files)} files{', with page' if self.page else ''})>")


@result
class CArrayExport(Record):
    """What :func:`export_c_array` wrote: the ``source`` (.cc) and ``header`` (.h) files, the C ``variable`` and
    the ``flash_bytes`` the array takes. A frozen record, also a complete read-only mapping (``r["source"]``)."""

    source: Path
    header: Path
    variable: str
    flash_bytes: int

    def _repr_html_(self):
        return (f"<p>wrote <code>{self.source}</code> and <code>{self.header}</code>: <b>{self.flash_bytes:,}</b> "
                f"bytes of flash in <code>{self.variable}</code></p>")


def export_tfjs(model, out_dir, quantize: str | None = None, page: bool = False, *, tfjs_url: str | None = None,
                title: str = "homl-edge: digit recognizer", labels=None, samples=None, overwrite: bool = False,
                trainable: bool = False, screenshot: bool = False) -> TfjsExport:
    """Write ``model`` in the TF.js Layers format (``model.json`` + weight shards) with the official converter.

    ``quantize`` stores the weights as ``"float16"``, ``"uint8"`` or ``"uint16"`` (affine) instead of float32.
    ``page=True`` adds a small progressive web app: a drawing pad, sample buttons and the prediction, with a
    manifest and a service worker that make it work offline once visited. The page loads TensorFlow.js {v} from
    the export folder: ``tfjs_url`` is a local ``tf.min.js`` to copy there (default: :func:`local_tfjs`, the npm
    install in ``web/`` or ``$HOML_EDGE_TFJS``); a URL is written as given (a host you trust; inside Jupyter the
    page's sandbox allows only the server's own files). ``samples=(x, y)`` puts up to 20 clickable examples in the page.
    ``trainable=True`` (with ``page=True``) adds in-browser fine-tuning: a person labels drawings, the page trains
    the last layer with ``model.fit`` of TF.js, keeps the result in IndexedDB (reloaded on the next visit) and can
    download it (``downloads://``); :func:`load_tfjs` brings such a download back to Keras. Nothing is uploaded.
    The folder is written next to its final place and renamed at the end: an error leaves nothing half-written.
    In a notebook the result shows the live page in an IFrame served by the notebook's own Jupyter server, which
    the notebook registers when it first shows the result (:func:`homl_edge.browser.register_page`: no marker file
    in the folder; the faces do it, homl_edge/_display.py);
    ``screenshot=True`` (needs a Chromium and a local ``tfjs_url``) saves ``preview.png``, which a saved notebook
    (GitHub, nbviewer) shows instead of a frame that has no server behind it.
    """
    model = _keras.load_model(model)  # a .keras/.h5 file, a SavedModel folder, or a result that holds a model
    graph = isinstance(model, _keras.SavedModelSource)  # a SavedModel becomes a TF.js graph model (inference)
    if graph and trainable:
        raise HomlEdgeError(f"{model.name} is a SavedModel: it exports as a TF.js graph model, which predicts but "
                            "cannot train; training in the page needs the Keras model (its .keras/.h5 file)")
    if not graph:
        _keras.check_model(model)
        model = _keras.to_legacy(_keras.without_training_wrappers(model))  # the official converter takes tf_keras
        # models (Keras 3: a verified copy); TF-MOT's pruning and clustering wrappers stripped as before any export
    if quantize not in TFJS_QUANTIZE:
        raise HomlEdgeError(f"quantize must be one of None, 'float16', 'uint8', 'uint16'; got {quantize!r}")
    out = Path(out_dir).expanduser()
    if out.exists():
        if out.is_file():
            raise HomlEdgeError(f"{out} is a file; export_tfjs writes a folder: give a folder path")
        if any(out.iterdir()) and not overwrite:
            raise HomlEdgeError(f"{out} exists and is not empty; pass {{overwrite=True}} to replace it",
                                param="overwrite")
        _check_replaceable(out)
    parent = out.resolve().parent  # "." and "..": the folder is renamed, so it needs its real name
    if not parent.exists():
        raise HomlEdgeError(f"the folder {parent} does not exist: create it first")
    if not os.access(parent, os.W_OK):
        raise HomlEdgeError(f"cannot write into {parent}: permission denied")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        _convert_tfjs(model, tmp, quantize)
        if trainable and not page:
            raise HomlEdgeError("trainable=True adds fine-tuning to the web page: pass page=True too")
        if page:
            _write_page(model, tmp, quantize, tfjs_url, title, labels, samples, trainable)
        _write_manifest(tmp)
        replace_folder(tmp, out.resolve())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if page and screenshot:
        _screenshot(out, samples)
        _write_manifest(out)  # preview.png is the export's too
    files = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    return TfjsExport(path=out, quantize=quantize, files=files, page=page)


EXPORT_MANIFEST = ".homl-edge-export.json"  # what an export wrote: all that overwrite=True may ever replace


def _folder_entries(folder: Path) -> set:
    """Every file, symlink and empty folder below ``folder`` (symlinks not followed), as relative POSIX paths."""
    found = set()
    for root, dirs, files in os.walk(folder, followlinks=False):
        rel = Path(root).relative_to(folder)
        found.update((rel / n).as_posix() for n in files)
        found.update((rel / n).as_posix() for n in dirs if os.path.islink(os.path.join(root, n)))
        if not dirs and not files and rel != Path("."):
            found.add(rel.as_posix() + "/")
    return found


def _write_manifest(folder: Path) -> None:
    entries = sorted(_folder_entries(folder) | {EXPORT_MANIFEST})
    (folder / EXPORT_MANIFEST).write_text(json.dumps({"homl-edge": "tfjs export", "files": entries}, indent=1))


def _check_replaceable(out: Path) -> None:
    """overwrite=True replaces a previous export and nothing else: every entry of the folder must be one that
    export listed in its manifest; and never the folder this process works in (or one holding it)."""
    cwd = Path.cwd().resolve()
    if out.resolve() == cwd or out.resolve() in cwd.parents:
        raise HomlEdgeError(f"{out} is the current folder (or holds it): export to a new folder instead")
    entries = _folder_entries(out)
    if not entries:
        return
    try:
        listed = set(json.loads((out / EXPORT_MANIFEST).read_text())["files"])
        if "index.html" in listed:
            listed.add("preview.png")  # a page export's screenshot (taken after the manifest until Nov 26)
    except (OSError, ValueError, KeyError, TypeError):
        listed = _legacy_export(out, entries)
    foreign = sorted(entries - listed)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise HomlEdgeError(f"{out} holds {shown}, which no homl-edge export wrote there; {{overwrite=True}} "
                            "replaces only a previous export: move those files or choose another folder",
                            param="overwrite")


_LEGACY_NAMES = re.compile(r"(model\.json|group\d+-shard\d+of\d+(\.bin)?|tf\.min\.js|preview\.png|\.homl-edge-page|"
                           + "|".join(re.escape(f) for f in PAGE_FILES) + ")")


def _legacy_export(out: Path, entries: set) -> set:
    """The entries of an export written before manifests existed: a TF.js ``model.json`` beside files whose names
    only an export writes (its shards, its page); nothing else is taken for one."""
    try:
        meta = json.loads((out / "model.json").read_text())
        if not ("modelTopology" in meta and "weightsManifest" in meta):
            return set()
    except (OSError, ValueError):
        return set()
    return {e for e in entries if "/" not in e and _LEGACY_NAMES.fullmatch(e)}


def _screenshot(out: Path, samples) -> None:
    """preview.png of the page after one prediction (best effort: a page that cannot run in a headless browser
    here still exports)."""
    from .browser import predict_in_browser

    try:
        x = np.asarray(samples[0])[:1] if samples is not None else None
        if x is None:
            return
        predict_in_browser(out, x, screenshot=out / "preview.png")
        _write_manifest(out)  # preview.png is the export's too: overwrite=True may replace it next time
    except Exception:
        (out / "preview.png").unlink(missing_ok=True)


export_tfjs.__doc__ = export_tfjs.__doc__.format(v=TFJS_VERSION)


def local_tfjs() -> Path | None:
    """A local ``tf.min.js`` if one is installed: ``$HOML_EDGE_TFJS``, or this checkout's ``web/node_modules``."""
    env = os.environ.get("HOML_EDGE_TFJS")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent.parent / "web/node_modules/@tensorflow/tfjs/dist/tf.min.js")
    return next((p for p in candidates if p.is_file()), None)


def _convert_tfjs(model, folder: Path, quantize):
    tfjs = _import_tfjs()
    qmap = {quantize: True} if quantize else None
    import warnings

    from ._tf import quiet

    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(model, _keras.SavedModelSource):  # tensorflowjs_converter --input_format=tf_saved_model
            try:
                tfjs.converters.convert_tf_saved_model(str(model.path), str(folder), quantization_dtype_map=qmap)
            except (ValueError, KeyError, RuntimeError) as e:
                raise HomlEdgeError(f"the TF.js converter could not convert the SavedModel {model.name}: "
                                    f"{first_line(e)[:300]}") from None
            return
        tfjs.converters.save_keras_model(model, str(folder), quantization_dtype_map=qmap)
    _drop_separable_kernel_fields(folder / "model.json")


def _drop_separable_kernel_fields(path: Path) -> None:
    """tf_keras writes kernel_initializer/_regularizer/_constraint into every SeparableConv2D's config (inherited
    from Conv, unused), and TF.js 4.22 refuses to load such a model ("Fields kernelInitializer, kernelRegularizer
    and kernelConstraint are invalid for SeparableConv2D"): fer's emotion model exported, and its page never
    predicted. The fields are dropped; the depthwise and pointwise ones hold the real settings."""
    meta = json.loads(path.read_text())
    changed = False

    def walk(node):
        nonlocal changed
        if isinstance(node, dict):
            if node.get("class_name") in ("SeparableConv2D", "SeparableConvolution2D") and isinstance(
                    node.get("config"), dict):
                for key in ("kernel_initializer", "kernel_regularizer", "kernel_constraint"):
                    if key in node["config"]:
                        del node["config"][key]
                        changed = True
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(meta.get("modelTopology"))
    if changed:
        path.write_text(json.dumps(meta))


def _page_io(model) -> tuple[list, int]:
    """The page's input shape (H, W, C; a free dimension taken as 1) and the number of outputs, from a Keras model
    or a SavedModel's serving signature."""
    if isinstance(model, _keras.SavedModelSource):
        tf = _tf.tf()
        with _tf.quiet():
            fn = tf.saved_model.load(str(model.path)).signatures.get("serving_default")
        if fn is None:
            raise HomlEdgeError(f"{model.name} has no serving_default signature: the page cannot call it")
        ins = [t for t in fn.structured_input_signature[1].values()]
        outs = list(fn.structured_outputs.values())
        if len(ins) != 1 or len(outs) != 1:
            raise HomlEdgeError(f"the page runs a model of one input and one output; {model.name} has {len(ins)} "
                                f"and {len(outs)}: export without page=True and call tf.loadGraphModel yourself")
        return [int(d) if d is not None else 1 for d in ins[0].shape[1:]], int(outs[0].shape[-1])
    if len(model.inputs) != 1 or len(model.outputs) != 1:  # it showed output 0 (MTCNN's box offsets) as classes
        raise HomlEdgeError(f"the page runs a model of one input and one output; {model.name} has "
                            f"{len(model.inputs)} and {len(model.outputs)}: export without page=True and call "
                            "tf.loadLayersModel yourself")
    return ([int(d) if d is not None else 1 for d in model.inputs[0].shape[1:]],
            int(model.outputs[0].shape[-1]))


def _import_tfjs():
    from ._tfjs import import_tfjs

    return import_tfjs()


def _write_app_shell(src: Path, folder: Path, title: str):
    """What both pages (TF.js and LiteRT.js) share: the style sheet, the icon, the drawing pad's ES module and the
    web-app manifest that makes the page installable."""
    for name in APP_SHELL:
        shutil.copyfile(src / name, folder / name)
    manifest = {"name": title, "short_name": "homl-edge", "start_url": "./index.html", "display": "standalone",
                "background_color": "#f6f8fa", "theme_color": "#1f6feb",
                "icons": [{"src": "icon.svg", "sizes": "any", "type": "image/svg+xml"}]}
    (folder / "manifest.webmanifest").write_text(json.dumps(manifest, indent=2))


def _write_page(model, folder: Path, quantize, tfjs_url, title, labels, samples, trainable=False):
    shape, n_out = _page_io(model)
    if len(shape) == 2:
        shape = shape + [1]
    if len(shape) != 3:
        raise HomlEdgeError(f"the web page draws images (H, W, C); this model's input is {tuple(shape)}. "
                            "Export without page=True and call tf.loadLayersModel yourself")
    labels = [str(l) for l in (labels if labels is not None else range(n_out))]
    if len(labels) != n_out:
        raise HomlEdgeError(f"{len(labels)} labels given for {n_out} model outputs")
    sample_list = []
    if samples is not None:
        sx, sy = samples
        for xi, yi in list(zip(np.asarray(sx), np.asarray(sy)))[:20]:
            sample_list.append({"x": [round(float(v), 4) for v in np.ravel(xi)], "label": int(yi)})
    src = widgets_dir() / "page"
    if tfjs_url is None:
        tfjs_url = local_tfjs()
        if tfjs_url is None:
            raise HomlEdgeError("the page needs TensorFlow.js and none is installed here: run `npm ci` in the "
                                "checkout's web/ folder, set HOML_EDGE_TFJS=/path/to/tf.min.js, or pass {tfjs_url=}",
                                param="tfjs_url")
    if Path(tfjs_url).expanduser().is_file():  # a local copy: ship it inside the export
        shutil.copyfile(Path(tfjs_url).expanduser(), folder / "tf.min.js")
        tfjs_url = "tf.min.js"
    elif not re.match(r"^(https?:)?//|^/", str(tfjs_url)):
        raise HomlEdgeError(f"{{tfjs_url}} {tfjs_url!r} is neither a URL (https://..., /path/tf.min.js) nor an "
                            "existing tf.min.js file", param="tfjs_url")
    model_key = hashlib.sha256((folder / "model.json").read_bytes()).hexdigest()[:16]
    config = {"inputShape": shape, "labels": labels, "quantize": quantize, "samples": sample_list, "title": title,
              "trainable": bool(trainable), "modelKey": model_key,
              "format": "graph" if isinstance(model, _keras.SavedModelSource) else "layers"}
    esc = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    html = ((src / "index.html").read_text().replace("{{TITLE}}", esc).replace("{{TFJS_URL}}", tfjs_url)
            .replace("{{W}}", str(shape[1])).replace("{{H}}", str(shape[0])))
    (folder / "index.html").write_text(html)
    (folder / "app.js").write_text((src / "app.js").read_text().replace("CONFIG_PLACEHOLDER", json.dumps(config)))
    _write_app_shell(src, folder, title)
    cached = ["./", "index.html", "app.js", *APP_SHELL, "manifest.webmanifest", "model.json"]
    cached += sorted(p.name for p in folder.glob("*.bin"))
    cached.append(tfjs_url)
    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        digest.update(name.encode())
        digest.update((folder / name).read_bytes())
    sw = (src / "sw.js").read_text().replace("CACHE_VERSION", digest.hexdigest()[:12])
    (folder / "sw.js").write_text(sw.replace("FILES_PLACEHOLDER", json.dumps(cached)))


def load_tfjs(path):
    """Load a TF.js Layers model (a folder or its ``model.json``) back into Keras with the official loader."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "model.json"
    if not p.is_file():
        raise HomlEdgeError(f"no TF.js model.json at {p}")
    tfjs = _import_tfjs()
    try:
        return tfjs.converters.load_keras_model(str(p))
    except Exception as e:
        first = first_line(e)
        raise HomlEdgeError(f"cannot load the TF.js model {p}: {first[:200]}") from None


# ------------------------------------------------------------------------------------- the .tflite in a browser
LITERTJS_VERSION = "2.5.3"
LITERTJS_BUILDS = ("litert_wasm_internal", "litert_wasm_compat_internal")  # relaxed SIMD, and without it
LITERTJS_DTYPES = ("float32", "int32", "uint8")  # the input/output types its Tensor takes (datatypes.ts)


@result
class WebExport(Result):
    """What :func:`export_web` wrote: the folder, its files and sizes (a frozen result; ``to_frame()`` is the file
    table). ``served``: as in :class:`TfjsExport`."""

    path: Path
    files: dict = field(default_factory=dict)
    served: str | None = None
    batch_fixed: bool = False  # the file's free batch dimension was fixed at 1 (LiteRT.js does not resize inputs)

    @property
    def model_bytes(self) -> int:
        return self.files.get("model.tflite", 0)

    @property
    def runtime_bytes(self) -> int:
        """What a browser downloads of LiteRT.js: the module and one Wasm build (the larger of the two here)."""
        js = sum(v for k, v in self.files.items() if k.startswith("litert/") and not k.startswith("litert/litert_"))
        return js + max(self.files.get(f"litert/{b}.js", 0) + self.files.get(f"litert/{b}.wasm", 0)
                        for b in LITERTJS_BUILDS)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({"bytes": self.files})

    page = True  # a web page, always (the faces show it live: homl_edge/_display.py)

    def _html_parts(self) -> tuple[str, str]:
        head, still = TfjsExport(path=self.path, quantize=None, files=self.files, page=True)._html_parts()
        return head.replace("TF.js export in", "LiteRT.js export in", 1).replace(
            "(float32 weights, 0 bytes)", f"(model.tflite, {self.model_bytes:,} bytes)", 1), still

    def _repr_html_(self):
        return "".join(self._html_parts())

    def __repr__(self):
        return f"<WebExport {self.path} (model.tflite {self.model_bytes:,} bytes; {len(self.files)} files)>"


def local_litertjs() -> Path | None:
    """The npm package ``@litertjs/core`` (with its ``wasm/`` builds) if installed: ``$HOML_EDGE_LITERTJS`` (the
    package folder), or this checkout's ``web/node_modules/@litertjs/core``."""
    env = os.environ.get("HOML_EDGE_LITERTJS")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent.parent / "web/node_modules/@litertjs/core")
    return next((p for p in candidates if (p / "dist/index.js").is_file() and (p / "wasm").is_dir()), None)


def export_web(model, out_dir, *, samples=None, labels=None, title: str = "homl-edge: digit recognizer (LiteRT.js)",
               overwrite: bool = False, screenshot: bool = False) -> WebExport:
    """Write a web page that runs the very ``.tflite`` file in the browser with LiteRT.js {v} (WebAssembly, XNNPACK).

    ``model`` is a :class:`LiteModel` (any mode: float32, int8 with float or int8 I/O, ...), a ``.tflite`` path, or
    a Keras model (converted to float32 first). The folder holds ``model.tflite`` byte for byte, the page (drawing
    pad, ``samples=(x, y)`` as clickable examples), LiteRT.js and its two Wasm builds copied from the npm package
    (:func:`local_litertjs`; nothing from a CDN), a manifest and a service worker (installable, offline once
    visited: the Wasm build the browser picked is cached too). TF.js stays the runtime for training in the page
    (:func:`export_tfjs` with ``trainable=True``). In a notebook the result shows the live page, registered with the
    notebook's Jupyter server like :func:`export_tfjs` pages; ``screenshot=True`` (needs a Chromium and
    ``samples``) saves ``preview.png``, which a saved notebook shows instead.
    """
    model = _keras.load_model(model, lite=True)  # a .tflite path, or a result: the .tflite it made, else its model
    if not isinstance(model, LiteModel):
        from .quantization import quantize

        model = quantize(model, "float32")
    model, batch_fixed = _batch_one(model)
    runtime = local_litertjs()
    if runtime is None:
        raise HomlEdgeError("LiteRT.js is not installed here: run `npm ci` in the checkout's web/ folder (it holds "
                            "@litertjs/core) or set HOML_EDGE_LITERTJS=/path/to/node_modules/@litertjs/core")
    utils = runtime.parent / "wasm-utils" / "dist" / "index.js"
    if not utils.is_file():
        raise HomlEdgeError(f"{utils} is missing: LiteRT.js needs @litertjs/wasm-utils beside @litertjs/core")
    inputs, outputs = model.input_details, model.output_details
    if len(inputs) != 1 or len(outputs) != 1:
        raise HomlEdgeError(f"the web page runs models with one input and one output; {model.name} has "
                            f"{len(inputs)} and {len(outputs)}: load it with LiteRT.js in your own page")
    for kind, d in (("input", inputs[0]), ("output", outputs[0])):
        dtype = np.dtype(d["dtype"]).name
        if dtype not in LITERTJS_DTYPES:
            raise HomlEdgeError(f"{model.name} has an {dtype} {kind}, and LiteRT.js {LITERTJS_VERSION} takes only "
                                f"{', '.join(LITERTJS_DTYPES)} tensors in and out: export the 'int8' variant (float "
                                "input and output, int8 inside) instead of 'int8-io'")
    shape = [int(d) for d in inputs[0]["shape"][1:]]
    if len(shape) == 2:
        shape = shape + [1]
    if len(shape) != 3:
        raise HomlEdgeError(f"the web page draws images (H, W, C); this model's input is {tuple(shape)}")
    n_out = int(outputs[0]["shape"][-1])
    labels = [str(l) for l in (labels if labels is not None else range(n_out))]
    if len(labels) != n_out:
        raise HomlEdgeError(f"{len(labels)} labels given for {n_out} model outputs")

    def io(d):
        scale, zero = d["quantization"]
        return {"dtype": np.dtype(d["dtype"]).name, "scale": float(scale), "zeroPoint": int(zero)}

    sample_list = []
    if samples is not None:
        sx, sy = samples
        for xi, yi in list(zip(np.asarray(sx), np.asarray(sy)))[:20]:
            sample_list.append({"x": [float(v) for v in np.ravel(xi).astype(np.float32)], "label": int(yi)})
    out = Path(out_dir).expanduser()
    if out.exists():
        if out.is_file():
            raise HomlEdgeError(f"{out} is a file; export_web writes a folder: give a folder path")
        if any(out.iterdir()):
            if not overwrite:
                raise HomlEdgeError(f"{out} exists and is not empty; pass {{overwrite=True}} to replace it",
                                    param="overwrite")
            if not (out / "model.tflite").is_file() or not (out / "litert").is_dir():
                raise HomlEdgeError(f"{out} holds something export_web did not write; {{overwrite=True}} replaces "
                                    "only an earlier export_web folder: choose another folder", param="overwrite")
    parent = out.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise HomlEdgeError(f"cannot write into {parent}: it does not exist or is read-only")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        (tmp / "model.tflite").write_bytes(model.content)
        lib = tmp / "litert"
        lib.mkdir()
        code = (runtime / "dist/index.js").read_text()
        if code.count('from "@litertjs/wasm-utils"') != 1:
            raise HomlEdgeError(f"unexpected LiteRT.js build in {runtime} (version {LITERTJS_VERSION} expected)")
        (lib / "litert.js").write_text(code.replace('from "@litertjs/wasm-utils"', 'from "./wasm-utils.js"'))
        shutil.copyfile(utils, lib / "wasm-utils.js")
        for build in LITERTJS_BUILDS:
            for ext in (".js", ".wasm"):
                shutil.copyfile(runtime / "wasm" / f"{build}{ext}", lib / f"{build}{ext}")
        src = widgets_dir() / "page"
        config = {"inputShape": shape, "labels": labels, "samples": sample_list, "title": title,
                  "input": io(inputs[0]), "output": io(outputs[0]), "file": "model.tflite",
                  "bytes": len(model.content), "litertjs": LITERTJS_VERSION}
        esc = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        html = ((src / "index.html").read_text().replace("{{TITLE}}", esc)
                .replace("{{W}}", str(shape[1])).replace("{{H}}", str(shape[0]))
                .replace("with TensorFlow.js", "with LiteRT.js, from the same .tflite file a phone runs")
                .replace('<script src="{{TFJS_URL}}"></script>\n  <script type="module" src="app.js"></script>',
                         '<script type="module" src="app.js"></script>'))
        (tmp / "index.html").write_text(html)
        (tmp / "app.js").write_text((src / "litert-app.js").read_text()
                                    .replace("CONFIG_PLACEHOLDER", json.dumps(config)))
        _write_app_shell(src, tmp, title)
        cached = ["./", "index.html", "app.js", *APP_SHELL, "manifest.webmanifest", "model.tflite",
                  "litert/litert.js", "litert/wasm-utils.js"]
        digest = hashlib.sha256()
        for p in sorted(q for q in tmp.rglob("*") if q.is_file()):
            digest.update(str(p.relative_to(tmp)).encode())
            digest.update(p.read_bytes())
        sw = (src / "sw.js").read_text().replace("CACHE_VERSION", digest.hexdigest()[:12])
        (tmp / "sw.js").write_text(sw.replace("FILES_PLACEHOLDER", json.dumps(cached)))
        replace_folder(tmp, out.resolve())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if screenshot:
        _screenshot(out, samples)
    files = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    return WebExport(path=out, files=files, batch_fixed=batch_fixed)


def _batch_one(lite: LiteModel) -> tuple[LiteModel, bool]:
    """``lite`` with its free batch dimension fixed at 1: LiteRT.js 2.5.3 runs a tensor only at the exact shape the
    file declares (``[-1, 8, 8, 1]`` refuses a ``[1, 8, 8, 1]`` buffer) and cannot resize. Only the shape signatures
    change (operators and weights are the same bytes); the result must give bit-identical outputs on the desktop,
    or nothing is written."""
    import flatbuffers

    from . import _flatbuffer
    from .lite import random_inputs

    model = _flatbuffer.parse(lite.content, lite.name)
    changed = False
    for sg in model.subgraphs:
        for t in sg.tensors or []:
            sig = [int(d) for d in (t.shapeSignature if t.shapeSignature is not None else [])]
            if sig and sig[0] == -1:
                if any(d == -1 for d in sig[1:]):
                    raise HomlEdgeError(f"{lite.name} has a tensor with free dimensions besides the batch "
                                        f"({sig}): LiteRT.js needs fixed shapes; convert it with fixed ones")
                t.shapeSignature = None
                changed = True
    if not changed:
        return lite, False
    builder = flatbuffers.Builder(len(lite.content) * 2 + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    fixed = LiteModel(bytes(builder.Output()), name=lite.name, meta=dict(lite.meta or {}, batch="fixed at 1"))
    x = random_inputs(lite.input_details, 4)
    a, b = lite.predict(x[0] if len(x) == 1 else x), fixed.predict(x[0] if len(x) == 1 else x)
    same = (all(np.array_equal(a[k], b[k]) for k in a) if isinstance(a, dict)  # several outputs: {name: array}
            else np.array_equal(a, b))
    if not same:
        raise HomlEdgeError(f"{lite.name} with its batch fixed at 1 does not predict what the file does: "
                            "convert the model with batch_size=1 and export that file")
    return fixed, True


export_web.__doc__ = export_web.__doc__.format(v=LITERTJS_VERSION)


# ----------------------------------------------------------------------------------------------- microcontrollers
def c_identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    return ident


def export_c_array(lite, path, *, variable: str = "g_model", alignment: int = 16,
                   overwrite: bool = False) -> CArrayExport:
    """Write a ``.tflite`` model as a C/C++ source in the TensorFlow Lite Micro convention, plus its header.

    ``model_data.cc`` holds ``alignas(16) const unsigned char g_model[]`` and ``const unsigned int g_model_len``;
    ``model_data.h`` declares them (``extern "C"`` so that C code links too). The array is what the model costs in
    flash. Returns a :class:`CArrayExport` (``result.source`` or ``result["source"]``, ``header``, ``variable``,
    ``flash_bytes``).
    """
    lite = require_lite(lite, "export_c_array", paths=True)  # optimize()'s result: the .tflite it made
    if alignment not in (4, 8, 16, 32, 64):
        raise HomlEdgeError(f"alignment must be 4, 8, 16, 32 or 64 bytes, got {alignment}")
    variable = c_identifier(variable)
    src = Path(path).expanduser()
    if src.suffix not in (".cc", ".cpp", ".c"):
        raise HomlEdgeError(f"{src.name}: give a .cc (or .cpp/.c) file name, e.g. model_data.cc")
    header = src.with_suffix(".h")
    for p in (src, header):
        if p.exists() and not overwrite:
            raise HomlEdgeError(f"{p} exists already; pass {{overwrite=True}} to replace it", param="overwrite")
    guard = c_identifier(header.name).upper() + "_"
    data = lite.content
    h = (f"// Generated by homl-edge from {lite.name!r} ({len(data):,} bytes). Do not edit.\n"
         f"#ifndef {guard}\n#define {guard}\n\n"
         "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
         f"extern const unsigned char {variable}[];\nextern const unsigned int {variable}_len;\n\n"
         "#ifdef __cplusplus\n}\n#endif\n\n"
         f"#endif  // {guard}\n")
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + 12]) for i in range(0, len(data), 12)]
    align = f"alignas({alignment})" if src.suffix != ".c" else f"__attribute__((aligned({alignment})))"
    body = (f"// Generated by homl-edge from {lite.name!r}: a TensorFlow Lite model for TFLite Micro.\n"
            f"// {len(data):,} bytes of flash; sha256 {lite.sha256}\n"
            f"#include \"{header.name}\"\n\n"
            f"{align} const unsigned char {variable}[] = {{\n  " + ",\n  ".join(rows) + "\n};\n"
            f"const unsigned int {variable}_len = {len(data)};\n")
    atomic_write(header, h.encode(), overwrite=overwrite)
    atomic_write(src, body.encode(), overwrite=overwrite)
    return CArrayExport(source=src, header=header, variable=variable, flash_bytes=len(data))


# ------------------------------------------------------------------------------------------- on-device snippets
_KOTLIN_ARRAYS = {"float32": "FloatArray", "int8": "ByteArray", "uint8": "ByteArray", "int32": "IntArray"}


@result
class Signature(Record):
    """A model's signature as phones load it (:func:`signature`): its ``key``, and ``inputs`` and ``outputs`` as
    ``{name: (shape, dtype, (scale, zero_point))}``. A frozen record, also a read-only mapping (``sig["inputs"]``);
    ``to_frame()`` has one row per tensor."""

    key: str
    inputs: dict
    outputs: dict

    def to_frame(self):
        import pandas as pd

        rows = [{"direction": side, "name": name, "shape": shape, "dtype": dtype, "scale": q[0], "zero_point": q[1]}
                for side, tensors in (("input", self.inputs), ("output", self.outputs))
                for name, (shape, dtype, q) in tensors.items()]
        return pd.DataFrame(rows, columns=["direction", "name", "shape", "dtype", "scale", "zero_point"])


def signature(lite: LiteModel, key: str | None = None) -> Signature:
    """The model's signature as phones load it, a :class:`Signature`: ``key``, ``inputs`` and ``outputs`` (``{name:
    (shape, dtype, (scale, zero_point))}``). The names are the ones ``runSignature`` (Android) and
    ``get_signature_runner`` (Python) take."""
    lite = require_lite(lite, "signature")  # optimize()'s result: the .tflite it made
    interp = lite.interpreter()
    keys = list(interp.get_signature_list())
    if not keys:
        raise HomlEdgeError(f"{lite.name} has no signature (a converter older than TF 2.7, or from_concrete_functions "
                            "without a model): phones then address tensors by index; re-convert it from Keras or a "
                            "SavedModel")
    key = key or keys[0]
    if key not in keys:
        raise HomlEdgeError(f"no signature {key!r} in {lite.name}: it has {', '.join(keys)}")
    runner = interp.get_signature_runner(key)

    def describe(details):  # the signature's own shapes (batch 1 where it is free), not a resized interpreter's
        return {name: (tuple(1 if int(s) < 0 else int(s) for s in d.get("shape_signature", d["shape"])),
                       np.dtype(d["dtype"]).name,
                       (float(d["quantization"][0]), int(d["quantization"][1])))
                for name, d in details.items()}

    return Signature(key=key, inputs=describe(runner.get_input_details()),
                     outputs=describe(runner.get_output_details()))


@result
class Snippets(Record):
    """The code that loads and runs a model on a device (:func:`deployment_snippets`): its ``signature`` and the
    ``python``, ``kotlin`` and ``swift`` sources. A frozen record, also a read-only mapping (``snippets["kotlin"]``);
    a notebook shows the three sources."""

    signature: dict
    python: str
    kotlin: str
    swift: str

    def _repr_html_(self):
        import html as html_mod

        return "".join(f"<p><b>{lang}</b></p><pre>{html_mod.escape(getattr(self, lang))}</pre>"
                       for lang in ("python", "kotlin", "swift"))


def deployment_snippets(lite: LiteModel, filename: str = "model.tflite", key: str | None = None) -> Snippets:
    """The code that loads and runs this model on a device (a :class:`Snippets`), filled in from its real
    signature: ``"python"`` (a
    Raspberry Pi or any Linux board with ``pip install ai-edge-litert``), ``"kotlin"`` (Android, LiteRT's
    ``Interpreter.runSignature``) and ``"swift"`` (iOS, TensorFlowLiteSwift, by tensor index in signature order).
    Integer inputs get their scale and zero point written in."""
    sig = signature(lite, key)
    (in_name, (in_shape, in_dtype, (in_scale, in_zp))), = list(sig["inputs"].items())[:1]
    out_name, (out_shape, out_dtype, (out_scale, out_zp)) = next(iter(sig["outputs"].items()))
    n_in = int(np.prod(in_shape))
    quantized_in = in_dtype in ("int8", "uint8")
    lo, hi = (-128, 127) if in_dtype == "int8" else (0, 255)
    to_int = f"x / {in_scale!r} {'-' if in_zp < 0 else '+'} {abs(in_zp)}"
    py_prep = (f"x = np.round({to_int}).clip({lo}, {hi}).astype(np.{in_dtype})   # the input's scale and zero point"
               if quantized_in else f"x = np.asarray(x, dtype=np.{in_dtype})")
    py_post = (f"y = (out.astype(np.float32) {'+' if out_zp < 0 else '-'} {abs(out_zp)}) * {out_scale!r}   # back to "
               "probabilities" if out_dtype in ("int8", "uint8") else "y = out")
    python = f"""# Raspberry Pi (or any Linux board): pip install ai-edge-litert numpy
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path={filename!r}, num_threads=4)
run = interpreter.get_signature_runner({sig['key']!r})

def predict(x):   # x: float32, shape {in_shape} (or any batch size in the first place)
    {py_prep}
    out = run({in_name}=x)[{out_name!r}]
    {py_post}
    return y   # shape {out_shape}
"""
    kt_array = _KOTLIN_ARRAYS.get(out_dtype, "FloatArray")
    kotlin = f"""// Android (build.gradle: implementation("com.google.ai.edge.litert:litert:1.+"))
val model = FileUtil.loadMappedFile(context, "{filename}")      // memory-mapped, read in place
val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(4))
val input = ByteBuffer.allocateDirect({n_in * np.dtype(in_dtype).itemsize}).order(ByteOrder.nativeOrder())
// ... put {n_in} {in_dtype} values{f" ({to_int})" if quantized_in else ""} into input, shape {list(in_shape)}
val output = Array({out_shape[0]}) {{ {kt_array}({int(np.prod(out_shape[1:]))}) }}
interpreter.runSignature(mapOf("{in_name}" to input), mapOf("{out_name}" to output), "{sig['key']}")
"""
    swift = f"""// iOS (Podfile: pod 'TensorFlowLiteSwift')
let path = Bundle.main.path(forResource: "{filename.rsplit('.', 1)[0]}", ofType: "tflite")!
let interpreter = try Interpreter(modelPath: path)
try interpreter.allocateTensors()
// input 0 is "{in_name}": {in_dtype}, shape {list(in_shape)}{f", scale {in_scale!r}, zero point {in_zp}" if quantized_in else ""}
try interpreter.copy(inputData, toInputAt: 0)   // inputData: Data of {n_in * np.dtype(in_dtype).itemsize} bytes
try interpreter.invoke()
// output 0 is "{out_name}": {out_dtype}, shape {list(out_shape)}
let output = try interpreter.output(at: 0)
"""
    return Snippets(signature=dict(sig), python=python, kotlin=kotlin, swift=swift)  # a dict: dict(snippets) is JSON
