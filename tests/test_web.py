"""The web page of ``export --web`` in a real browser: Playwright driving the system's Chromium
(never Playwright's own browser download), the page served on 127.0.0.1 by the package's server.

Needs Chromium (``apt-get install -y chromium``) and an onnxruntime-web copy (``npm install
--prefix .ci/node onnxruntime-web@1.30.0``, or ``PIX2PIX_TF_ORT_WEB=DIR``); without them these
tests skip with the reason, except where ``PIX2PIX_TF_REQUIRE_BROWSER=1`` (CI) makes that a
failure.
"""

import base64
import hashlib
import io
import json
import os
import shutil
import struct
import tarfile
import threading
import urllib.request
import zlib
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import photos, tiny_editor, tiny_model
from PIL import Image

from pix2pix_tf import TASKS, read_image, translate
from pix2pix_tf.cli.export import main as export_main
from pix2pix_tf.cli.serve import main as serve_main
from pix2pix_tf.cli.webserver import ISOLATION_HEADERS, make_server, url_of
from pix2pix_tf.data import pair_pipeline
from pix2pix_tf.exporters import ExportError, export_model
from pix2pix_tf.exporters.targets import default_inference_mode
from pix2pix_tf.exporters.web import RUNTIME_FILES, download_runtime, vendor_runtime
from pix2pix_tf.inference import inference_mode
from pix2pix_tf.model import default_optimizer
from pix2pix_tf.tasks.instruct.data import EditsSource
from pix2pix_tf.tasks.instruct.edits import EDITS
from pix2pix_tf.tasks.instruct.pretrained_text import WordPieceVocabulary
from pix2pix_tf.tasks.instruct.text import build_vocabulary

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("PIX2PIX_TF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
RUNTIME = Path(os.environ.get("PIX2PIX_TF_ORT_WEB") or ROOT / ".ci" / "node")
REQUIRED = os.environ.get("PIX2PIX_TF_REQUIRE_BROWSER") == "1"
SCREENSHOTS = os.environ.get("PIX2PIX_TF_SCREENSHOTS")
STATUS_DONE = r"/done in \d+ ms$|^error:/"


def _runtime_present():
    return any((RUNTIME / sub / RUNTIME_FILES[-1]).is_file()
               for sub in ("dist", "node_modules/onnxruntime-web/dist", "."))


def _runtime_missing():
    if _runtime_present():
        return []
    return [f"no onnxruntime-web at {RUNTIME} (npm install --prefix .ci/node "
            "onnxruntime-web@1.30.0, or set PIX2PIX_TF_ORT_WEB)"]


def _missing():
    reasons = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reasons.append("Playwright for Python is not installed (pip install playwright)")
    if not Path(CHROMIUM).is_file():
        reasons.append(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    return reasons + _runtime_missing()


def _require(reasons):
    """Skips with the reasons, or fails where ``PIX2PIX_TF_REQUIRE_BROWSER=1`` (CI)."""
    if reasons:
        (pytest.fail if REQUIRED else pytest.skip)("; ".join(reasons))


@pytest.fixture(scope="module")
def runtime():
    """The onnxruntime-web copy the exported pages vendor (every page fixture needs it)."""
    _require(_runtime_missing())
    return RUNTIME


@pytest.fixture(scope="module")
def browser():
    _require(_missing())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@contextmanager
def served(folder, isolate=True):
    server = make_server(folder, 0, isolate=isolate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()


def open_page(browser, url):
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function("() => /^(ready|error)/.test(document.getElementById('status')"
                           ".textContent)", timeout=60000)
    return page


def status(page):
    return page.inner_text("#status")


def act(page, action):
    """Runs ``action`` and waits for the page's run to end; returns the status."""
    page.evaluate("document.getElementById('status').textContent = ''")
    action()
    page.wait_for_function(f"() => {STATUS_DONE}.test(document.getElementById('status')"
                           ".textContent)", timeout=60000)
    return status(page)


def pixels(page, canvas="output"):
    data = page.evaluate(f"""() => {{
        const c = document.getElementById('{canvas}');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
        return [c.width, c.height, Array.from(d.data)];
    }}""")
    return np.array(data[2], np.uint8).reshape(data[1], data[0], 4)


def psnr_u8(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def to_u8(image):
    return np.round(np.clip((np.asarray(image) + 1) / 2, 0, 1) * 255).astype(np.uint8)


def photo(path, width, height, seed=0):
    """A smooth colourful PNG (closer to a photo than noise)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
    Image.fromarray(base).resize((width, height), Image.BICUBIC).save(path)
    return path


def screenshot(page, tmp_path, name):
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SCREENSHOTS) / path.name)
    shot = np.asarray(Image.open(path))
    assert shot.shape[0] > 200 and shot.std() > 10  # a page, not a blank
    return path


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    model = tiny_model(seed=3)  # 3 levels: size multiple 8
    model.compile()
    rng = np.random.default_rng(0)
    x = tf.image.resize(rng.uniform(-1, 1, (8, 4, 4, 3)), (32, 32)).numpy().astype("float32")
    model.fit(tf.data.Dataset.from_tensor_slices((x, -x[..., ::-1])).batch(2), epochs=2,
              verbose=0)
    path = tmp_path_factory.mktemp("translator") / "tiny.keras"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def translator_pages(runtime, translator, tmp_path_factory):
    model, _ = translator
    out = tmp_path_factory.mktemp("pages")
    pages = {}
    # one page per up-convolution graph (transposed convolutions; four 2x2 convolutions
    # interleaved): both run in the browser
    for weights, upsampling in (("float32", "transpose"), ("float16", "subpixel")):
        reports = export_model(model, out / weights, ["web"],
                               web_runtime=str(runtime), web_weights=weights,
                               web_upsampling=upsampling, verbose=False)
        pages[weights] = (out / weights / "web", reports[-1])
    return pages


@pytest.fixture(scope="module")
def editor(runtime, tmp_path_factory):
    keras.utils.set_random_seed(0)
    source = EditsSource(photos(8), size=32)
    words = build_vocabulary([p for e in EDITS.values() for p in e.phrasings])
    model = tiny_editor(words, 12, seed=2)
    data = pair_pipeline(source, batch_size=16, preprocess="crop", crop_size=16, multiple=8)
    model.compile(default_optimizer(2e-3), default_optimizer(2e-3))
    model.fit(data, epochs=8, verbose=0)
    out = tmp_path_factory.mktemp("editor")
    export_model(model, out, ["web"],
                 web_runtime=str(runtime), web_weights="float32", verbose=False)
    return model, out / "web"


# ----------------------------------------------------------------------------- translator
def test_translator_page_matches_keras(browser, translator, translator_pages, tmp_path):
    model, _ = translator
    image_path = photo(tmp_path / "photo.png", 44, 30)  # not a multiple of 8: padded, cropped
    image = read_image(image_path, 3)
    with inference_mode(model, "deterministic"):
        expected = to_u8(translate(model, image))
    measured = {}
    for weights, (folder, report) in translator_pages.items():
        config = json.loads((folder / "model.json").read_text())
        assert config["task"] == "translate" and config["weights"] == weights
        assert config["upsampling"] == ("transpose" if weights == "float32" else "subpixel")
        assert config["runtime"]["url"] == "./ort/"
        assert report.size_bytes == (folder / "model.onnx").stat().st_size
        with served(folder) as url:
            page = open_page(browser, url + "?threads=2")
            assert "2 thread(s)" in status(page), status(page)  # cross-origin isolated
            text = act(page, lambda: page.set_input_files("#image-file", str(image_path)))
            assert text.startswith("44×30 (padded to 48×32) translated: done in"), text
            got = pixels(page)
            assert got.shape == (30, 44, 4) and (got[..., 3] == 255).all()
            measured[weights] = psnr_u8(got[..., :3], expected)
            screenshot(page, tmp_path, f"translator_{weights}")
            page.close()
    print(f"page vs Keras translate: float32 {measured['float32']:.1f} dB, "
          f"float16 {measured['float16']:.1f} dB")
    assert measured["float32"] >= 40, measured
    assert measured["float16"] >= 35, measured  # reported in benchmarks/NOTES.md
    # the weights (not the file: the two graphs differ in their shape ops) halve; tiny ones,
    # biases, stay float32
    sizes = {w: weight_bytes(f / "model.onnx") for w, (f, _) in translator_pages.items()}
    assert sizes["float16"] < 0.55 * sizes["float32"], sizes


def weight_bytes(path):
    import onnx

    return sum(len(t.raw_data) for t in onnx.load(str(path)).graph.initializer)


def test_translator_page_draws_undoes_downloads_and_downscales(browser, translator_pages,
                                                              tmp_path):
    folder, _ = translator_pages["float16"]
    with served(folder) as url:
        page = open_page(browser, url)
        blank = pixels(page, "input")
        assert blank.shape[:2] == (256, 256) and (blank[..., :3] == 255).all()
        box = page.locator("#input").bounding_box()
        page.fill("#brush-color", "#ff0000")
        page.mouse.move(box["x"] + 20, box["y"] + 20)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        drawn = pixels(page, "input")
        red = (drawn[..., 0] > 200) & (drawn[..., 1] < 60)
        assert red.sum() > 100  # the stroke is on the canvas
        text = act(page, lambda: page.click("#run"))
        assert text.startswith("256×256 translated: done in"), text
        assert page.get_attribute("#download", "href").startswith("blob:")
        page.click("#undo")
        assert (pixels(page, "input")[..., :3] == 255).all()  # back to the blank canvas
        wide = photo(tmp_path / "wide.png", 1100, 60, seed=3)
        text = act(page, lambda: page.set_input_files("#image-file", str(wide)))
        assert "done in" in text, text
        assert "downscaled from 1100×60 to 1024×56" in page.inner_text("#note")
        assert pixels(page).shape[:2] == (56, 1024)
        page.close()


def _png_header(width, height):
    """The first bytes of a PNG that declares ``width`` x ``height`` (no pixel data)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def test_page_errors_are_shown_never_a_blank_page(browser, translator_pages, tmp_path):
    folder, _ = translator_pages["float16"]
    with served(folder) as url:
        page = open_page(browser, url)
        not_image = tmp_path / "notes.png"
        not_image.write_text("these are my notes, not a picture")
        text = act(page, lambda: page.set_input_files("#image-file", str(not_image)))
        assert text == ("error: notes.png is not an image this browser can read (PNG, JPEG, "
                        "WebP, GIF or BMP)."), text
        bomb = tmp_path / "huge.png"
        bomb.write_bytes(_png_header(30000, 20000))
        text = act(page, lambda: page.set_input_files("#image-file", str(bomb)))
        assert text.startswith("error: huge.png is too large (30000×20000 pixels"), text
        page.close()
    broken = tmp_path / "no_model"
    shutil.copytree(folder, broken)
    (broken / "model.onnx").unlink()
    with served(broken) as url:
        page = open_page(browser, url)
        assert status(page).startswith("error: the model model.onnx is missing"), status(page)
        page.close()
    shutil.rmtree(broken / "ort")
    with served(broken) as url:
        page = open_page(browser, url)
        assert status(page).startswith("error: the onnxruntime-web runtime is missing"), \
            status(page)
        assert "--web-runtime download" in status(page)
        page.close()
    page = browser.new_page()
    page.goto((folder / "index.html").as_uri())
    assert status(page).startswith("error: this page must be served over HTTP"), status(page)
    page.close()


# -------------------------------------------------------------------------------- editor
PHRASINGS = [
    "make it sepia", "Make it SEPIA!", "invert the colors", "  invert\tthe   colors  ",
    "make it black-and-white, please.", "make it brighter?", "Darker!!!", "make it darker",
    "turn it into a watercolour painting",  # unknown words
    "it's sepia", "sepia (please)", "MAKE it Brighter; please", "éclairer l'image",
    "make it brighter and darker",
    "please make it black and white now and then make it bright",  # 12 words: the limit
    "please make it black and white now and then make it brighter too",  # 13: too long
    "!!!", "", "   ",
]


def python_tokens(model, text):
    try:
        return [int(i) for i in model.vocabulary.encode([text])[0]]
    except ValueError as error:
        return str(error).split(" (allow_empty=True")[0]


def test_editor_page_tokenises_as_python_and_edits_as_python(browser, editor, tmp_path):
    model, folder = editor
    image_path = photo(tmp_path / "photo.png", 40, 32, seed=5)
    image = np.asarray(Image.open(image_path).convert("RGB"))
    with served(folder) as url:
        page = open_page(browser, url)
        assert page.is_visible("#instruction") and page.is_visible("#strength")
        held_out = [p for e in EDITS.values() for p in e.held_out]  # never seen in training
        assert len(held_out) >= 20
        for text in PHRASINGS + held_out:
            got = page.evaluate("(t) => window.pix2pixTokenize(t)", text)
            assert got == python_tokens(model, text), text
        page.set_input_files("#image-file", str(image_path))
        page.wait_for_function("() => /^opened/.test(document.getElementById('status')"
                               ".textContent)")
        outputs = {}
        for instruction in ("invert the colors", "make it darker"):
            page.fill("#instruction", instruction)
            text = act(page, lambda: page.press("#instruction", "Enter"))
            assert text.startswith("40×32 edited: done in"), text  # a multiple of 8: no pad
            outputs[instruction] = pixels(page)[..., :3]
            with inference_mode(model, default_inference_mode(model)):  # the page's mode
                expected = model.edit(image, instruction)
            assert psnr_u8(outputs[instruction], expected) >= 40, instruction
        screenshot(page, tmp_path, "editor")
        assert psnr_u8(*outputs.values()) < 35  # the instruction changes the output
        page.fill("#strength", "0")
        text = act(page, lambda: page.click("#run"))
        assert np.array_equal(pixels(page)[..., :3], image)  # strength 0: the input unchanged
        for bad, message in [("", "error: instruction 0 is empty ('')"),
                             (PHRASINGS[-4], "error: " + python_tokens(model, PHRASINGS[-4]))]:
            page.fill("#instruction", bad)
            text = act(page, lambda: page.click("#run"))
            assert text.startswith(message), (text, message)
        page.close()


def test_editor_with_a_wordpiece_encoder_has_no_page():
    vocabulary = WordPieceVocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "make", "it"], 8)
    with pytest.raises(ValueError, match="cannot tokenise: use the SavedModel"):
        TASKS["instruct"].web_page(SimpleNamespace(vocabulary=vocabulary))


# ------------------------------------------------------------------- server and runtime
def test_server_sends_isolation_headers_and_mime_types(translator_pages):
    folder, _ = translator_pages["float16"]
    with served(folder) as url:
        with urllib.request.urlopen(url + "index.html") as response:
            for key, value in ISOLATION_HEADERS.items():
                assert response.headers[key] == value
        with urllib.request.urlopen(url + "ort/ort-wasm-simd-threaded.wasm") as response:
            assert response.headers["Content-Type"] == "application/wasm"
        with urllib.request.urlopen(url + "app.js") as response:
            assert response.headers["Content-Type"].startswith("text/javascript")
    with served(folder, isolate=False) as url:
        with urllib.request.urlopen(url + "index.html") as response:
            assert "Cross-Origin-Embedder-Policy" not in response.headers
    assert serve_main([str(folder.parent)]) == 2  # no index.html there


def _fake_runtime_tarball(path, version="1.30.0"):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in [*((f"package/dist/{n}", n.encode()) for n in RUNTIME_FILES),
                           ("package/package.json", json.dumps({"version": version}).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def test_runtime_download_checks_the_pinned_checksum_offline(tmp_path):
    tarball = tmp_path / "onnxruntime-web-1.30.0.tgz"
    integrity = _fake_runtime_tarball(tarball)
    cache = tmp_path / "cache"
    got = download_runtime(tarball.as_uri(), integrity, cache=cache, progress=None)
    assert got.read_bytes() == tarball.read_bytes()
    assert vendor_runtime(got, tmp_path / "ort") == "1.30.0"
    assert sorted(p.name for p in (tmp_path / "ort").iterdir()) == sorted(RUNTIME_FILES)
    tarball.write_bytes(tarball.read_bytes()[:-10] + b"0123456789")  # tampered
    with pytest.raises(ExportError, match="does not match its published checksum"):
        download_runtime(tarball.as_uri(), integrity, cache=tmp_path / "other", progress=None)
    assert not any((tmp_path / "other").iterdir())  # nothing kept
    with pytest.raises(ExportError, match="cannot download the web runtime"):
        download_runtime((tmp_path / "absent.tgz").as_uri(), integrity, cache=cache / "x",
                         progress=None)
    with pytest.raises(ExportError, match="no onnxruntime-web runtime here"):
        vendor_runtime(tmp_path, tmp_path / "ort2")


def test_export_cli_web_options(translator, tmp_path, capsys):
    _, path = translator
    assert export_main([str(path), "--serve"]) == 2
    assert "--serve serves the page of --web" in capsys.readouterr().err
    assert export_main([str(path), "--web", "--web-runtime", str(tmp_path / "nowhere"),
                        "--output", str(tmp_path / "out")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "out" / "web" / "model.onnx").exists()


def test_onnx_graph_is_fused_to_the_same_function(translator, tmp_path):
    import onnx

    from pix2pix_tf.core.layers import BatchNorm
    from pix2pix_tf.exporters import export_onnx, run_onnx

    model, _ = translator
    norms = sum(isinstance(layer, BatchNorm) for layer in model.generator.layers)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 24, 40, 3)).astype("float32")
    outputs = {}
    for fuse in (False, True):
        path = export_onnx(model, tmp_path / f"fuse{fuse}.onnx", fuse=fuse)
        ops = [n.op_type for n in onnx.load(str(path)).graph.node]
        assert ops.count("InstanceNormalization") == (norms if fuse else 0)
        assert ("GlobalAveragePool" in ops) == (not fuse)
        # static 'same' padding of the up-convolutions: no shape ops computing crops at runtime
        assert ("Slice" in ops or "Shape" in ops) == (not fuse)
        outputs[fuse] = run_onnx(path, x)[0]
    with inference_mode(model, "deterministic"):
        expected = model.generator(x, training=False).numpy()
    assert norms >= 2
    np.testing.assert_allclose(outputs[True], expected, atol=2e-5)
    np.testing.assert_allclose(outputs[True], outputs[False], atol=2e-5)


def test_readme_browser_commands_run(runtime, translator, tmp_path, monkeypatch):
    """The commands of docs/browser.md ("In the browser"), with the npm registry replaced by the
    local runtime copy: export writes the newest run's page, serve finds it."""
    import re

    from pix2pix_tf.cli import serve as serve_cli
    from pix2pix_tf.exporters import web

    text = (ROOT / "docs" / "browser.md").read_text()
    block = re.search(r"^# In the browser\n.*?```bash\n(.*?)```", text, re.S).group(1)
    lines = [line.split("#")[0].split() for line in block.strip().splitlines()]
    assert [line[:3] for line in lines] == [["python", "-m", "pix2pix_tf.export"],
                                            ["python", "-m", "pix2pix_tf.serve"]]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "quick").mkdir(parents=True)
    shutil.copy(translator[1], tmp_path / "runs" / "quick" / "model.keras")
    monkeypatch.setattr(web, "download_runtime", lambda: runtime)
    assert export_main(lines[0][3:]) == 0
    page = tmp_path / "exports" / "quick" / "web"
    assert sorted(p.name for p in (page / "ort").iterdir()) == sorted(RUNTIME_FILES)
    assert serve_cli.newest_page() == Path("exports/quick/web")
    served_folders = []
    monkeypatch.setattr(serve_cli, "serve", lambda folder, port, isolate: served_folders.append(
        (Path(folder), port, isolate)) or 0)
    assert serve_cli.main(lines[1][3:]) == 0
    assert served_folders == [(Path("exports/quick/web"), 8000, True)]
