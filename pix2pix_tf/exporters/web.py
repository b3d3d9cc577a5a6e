"""A static web page that runs the generator in the browser: ``export --web``.

The folder it writes (``exports/<run>/web/``) holds the page (``index.html``, ``app.js``,
``style.css``, copied from :mod:`pix2pix_tf.exporters.page`), the generator as ONNX
(``model.onnx``, float16 weights by default: half the size, float32 arithmetic) and
``model.json``, what the page needs to know: the size multiple and channels, the runtime's
address, and what the model's task adds (an editor's vocabulary and sequence length, from
:meth:`pix2pix_tf.tasks.Task.web_page`). No server code: any static file server works; the
package's own (``python -m pix2pix_tf.serve``) also makes the page cross-origin isolated, so
the runtime uses several threads.

The runtime is onnxruntime-web's WebAssembly backend, version :data:`ORT_WEB_VERSION` (three
files, :data:`RUNTIME_FILES`, 14 MB). Where it comes from (``runtime=``):

- ``"cdn"`` (default): the page loads it from a pinned public CDN address (:data:`CDN_URL`), so
  the folder is small but needs the internet when opened;
- ``"download"``: the pinned npm package is fetched once from the npm registry
  (:data:`TARBALL_URL`), checked against its published sha512, kept in
  ``~/.cache/pix2pix_tf/``, and the three files are copied beside the page: it then works
  offline;
- a path: the same from local files: an ``npm install onnxruntime-web`` folder, its ``dist/``,
  or an ``npm pack`` tarball.
"""

import base64
import hashlib
import json
import os
import shutil
import tarfile
import urllib.request
from importlib import resources
from pathlib import Path

from pix2pix_tf.exporters.common import ExportError
from pix2pix_tf.exporters.onnx import export_onnx
from pix2pix_tf.networks import as_generator
from pix2pix_tf.tasks import task_of

ORT_WEB_VERSION = "1.30.0"
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
CDN_URL = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
TARBALL_URL = (f"https://registry.npmjs.org/onnxruntime-web/-/"
               f"onnxruntime-web-{ORT_WEB_VERSION}.tgz")
#: The npm registry's integrity string of that tarball.
TARBALL_INTEGRITY = ("sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7Qm"
                     "RMDs1SigqR4CXAfKYQ==")
#: Where ``runtime="download"`` keeps the tarball.
CACHE = Path(os.environ.get("PIX2PIX_TF_CACHE", Path.home() / ".cache" / "pix2pix_tf"))
#: The page's assets, copied into every exported folder.
PAGE_FILES = ("index.html", "app.js", "style.css")
#: Larger images are downscaled by the page (with a note) to this many pixels a side.
MAX_SIDE = 1024


def _integrity_ok(path, integrity):
    algorithm, expected = integrity.split("-", 1)
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode() == expected


def download_runtime(url=TARBALL_URL, integrity=TARBALL_INTEGRITY, cache=None, progress=print):
    """The pinned onnxruntime-web npm tarball, fetched once into ``cache`` and checked against
    ``integrity``; returns its path. ``ExportError`` (with the alternatives) when it cannot be
    fetched or does not match."""
    cache = Path(cache or CACHE)
    path = cache / url.rsplit("/", 1)[-1]
    if path.is_file() and _integrity_ok(path, integrity):
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done, shown = 0, -1
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                done += len(block)
                if progress and total and done * 10 // total != shown:
                    shown = done * 10 // total
                    progress(f"downloading onnxruntime-web {ORT_WEB_VERSION}: "
                             f"{done / 1e6:.1f} of {total / 1e6:.1f} MB")
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise ExportError(f"cannot download the web runtime from {url}: {error}. Use "
                          "--web-runtime cdn (the page loads it from the internet) or "
                          "--web-runtime DIR with a local copy (npm install onnxruntime-web"
                          f"@{ORT_WEB_VERSION}).") from None
    if not _integrity_ok(partial, integrity):
        partial.unlink(missing_ok=True)
        raise ExportError(f"the web runtime downloaded from {url} does not match its published "
                          f"checksum ({integrity[:20]}...); nothing was kept. Try again, or use "
                          "--web-runtime DIR with a local copy.")
    partial.replace(path)
    return path


def _runtime_folder(path):
    """The folder among ``path``'s usual layouts that holds :data:`RUNTIME_FILES`, or None."""
    for folder in (path, path / "dist", path / "node_modules" / "onnxruntime-web" / "dist",
                   path / "package" / "dist"):
        if all((folder / name).is_file() for name in RUNTIME_FILES):
            return folder
    return None


def vendor_runtime(source, destination):
    """Copies the runtime files from ``source`` (a folder or an npm tarball) into
    ``destination``; returns the version found (None when not recorded)."""
    source, destination = Path(source), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    wanted = f"{', '.join(RUNTIME_FILES)} (onnxruntime-web {ORT_WEB_VERSION}: npm install " \
             f"onnxruntime-web@{ORT_WEB_VERSION})"
    if source.is_file():
        try:
            with tarfile.open(source) as archive:
                names = set(archive.getnames())
                missing = [n for n in RUNTIME_FILES if f"package/dist/{n}" not in names]
                if missing:
                    raise ExportError(f"{source}: this tarball lacks {', '.join(missing)}; "
                                      f"--web-runtime needs {wanted}.")
                for name in RUNTIME_FILES:
                    with archive.extractfile(f"package/dist/{name}") as f, \
                            open(destination / name, "wb") as out:
                        shutil.copyfileobj(f, out)
                version = None
                if "package/package.json" in names:
                    with archive.extractfile("package/package.json") as f:
                        version = json.load(f).get("version")
                return version
        except (tarfile.TarError, OSError) as error:
            raise ExportError(f"{source}: not a readable npm tarball ({error}); --web-runtime "
                              f"takes a folder or a .tgz with {wanted}.") from None
    folder = _runtime_folder(source) if source.is_dir() else None
    if folder is None:
        raise ExportError(f"{source}: no onnxruntime-web runtime here; --web-runtime takes a "
                          f"folder (or its dist/ or node_modules) or a .tgz with {wanted}.")
    for name in RUNTIME_FILES:
        shutil.copyfile(folder / name, destination / name)
    package = folder.parent / "package.json"
    return json.loads(package.read_text()).get("version") if package.is_file() else None


def page_config(model, runtime_url, model_file="model.onnx"):
    """``model.json``: what the page reads before it loads the model."""
    generator = as_generator(model)
    task = task_of(model)
    try:
        extra = task.web_page(model)
    except ValueError as error:
        raise ExportError(f"--web: {error}") from None
    trained = getattr(model, "training_config", None) or {}
    side = trained.get("crop_size") or 256
    return {"format": 1, "task": task.name, "model": model_file,
            "runtime": {"url": runtime_url, "version": ORT_WEB_VERSION},
            "input": "images", "input_channels": generator.input_channels,
            "output_channels": generator.output_channels,
            "size_multiple": generator.size_multiple, "max_side": MAX_SIDE,
            "canvas_size": [side, side], "value_range": [-1, 1],
            "title": _title(trained), **extra}


def _title(trained):
    """The page's heading: the run's name and what it learned from."""
    run = Path(trained["run_dir"]).name if trained.get("run_dir") else None
    data = trained.get("data")
    data = Path(data).name if isinstance(data, str) and data else None
    return " · ".join(p for p in (run, data and f"trained on {data}") if p) or "pix2pix"


def export_web(model, output_dir, runtime="cdn", weights="float16",
               inference_mode="deterministic", metadata=None, upsampling="transpose"):
    """Writes the page folder ``output_dir`` (see the module's doc); returns the path of its
    ``model.onnx`` (which the exporter verifies against Keras)."""
    output_dir = Path(output_dir)
    if inference_mode == "paper":
        raise ExportError("the web page runs the deterministic inference mode only (no random "
                          "ops in ONNX); export with --inference-mode deterministic.")
    config = page_config(model, CDN_URL if runtime == "cdn" else "./ort/")  # refuses first
    if runtime not in ("cdn", "download") and not Path(runtime).exists():
        raise ExportError(f"--web-runtime {runtime}: no such file or folder; give an npm install "
                          f"folder or tarball of onnxruntime-web {ORT_WEB_VERSION}, 'download' "
                          "or 'cdn'.")
    output_dir.mkdir(parents=True, exist_ok=True)
    if runtime != "cdn":
        source = download_runtime() if runtime == "download" else Path(runtime)
        version = vendor_runtime(source, output_dir / "ort")
        if version and version != ORT_WEB_VERSION:
            print(f"note: the web runtime in {runtime} is onnxruntime-web {version}; the page "
                  f"is tested with {ORT_WEB_VERSION}.")
        config["runtime"]["version"] = version or ORT_WEB_VERSION
    else:
        shutil.rmtree(output_dir / "ort", ignore_errors=True)  # a stale copy would mislead
    path = export_onnx(model, output_dir / config["model"], inference_mode=inference_mode,
                       weights=weights, upsampling=upsampling,
                       metadata={"pix2pix_tf": json.dumps(metadata or {}, default=str)})
    config["model_bytes"] = path.stat().st_size
    config["weights"] = weights
    config["upsampling"] = upsampling
    page = resources.files("pix2pix_tf.exporters") / "page"
    for name in PAGE_FILES:
        (output_dir / name).write_bytes((page / name).read_bytes())
    (output_dir / "model.json").write_text(json.dumps(config, indent=1) + "\n")
    return path
