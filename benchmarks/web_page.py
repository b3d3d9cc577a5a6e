"""The web page's numbers: export memory and time, model size, page load time, ms per 256x256
image in headless Chromium (1 and 2 threads, after the wasm code has warmed up), PSNR against
Keras. Results go to benchmarks/NOTES.md ("The model in a web page").

    python benchmarks/web_page.py --runtime .ci/node                 # quick preset + unet_256
    python benchmarks/web_page.py --runtime .ci/node --baseline      # + the old ONNX conversion
    python benchmarks/web_page.py --runtime .ci/node --model runs/quick/model.keras

``--baseline`` also converts each generator the way export did before (weights as graph
constants: unet_256 needs about 15 GB) and times that file in the same page, so the speed
ratio is measured in the same run. Weights are random (seed 0) unless --model is given: speed
and size do not depend on them.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def export_child(kind, out, baseline, runtime, model_path, upsampling="transpose"):
    """Runs in a child process (so its peak memory is its own): writes the page into ``out``."""
    import numpy as np

    from pix2pix_tf import Pix2Pix, build_generator, load_model
    from pix2pix_tf.exporters.web import export_web

    if model_path:
        model = load_model(model_path)
    else:
        ngf = {"quick": 16, "unet_256": 64}[kind]
        model = Pix2Pix(build_generator("unet", 3, 3, ngf=ngf, seed=0), None, lambda_gan=0.0)
    if baseline:  # the conversion export used before: weights as graph constants
        import onnx
        import tensorflow as tf
        import tf2onnx

        from pix2pix_tf.exporters.common import translate_function
        from pix2pix_tf.inference import inference_mode
        from pix2pix_tf.networks import as_generator

        start = time.perf_counter()
        with inference_mode(as_generator(model), "deterministic") as generator:
            spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
            proto, _ = tf2onnx.convert.from_function(translate_function(generator, spec),
                                                     input_signature=[spec], opset=17)
        onnx.save(proto, str(Path(out) / "baseline.onnx"))
        json.dump({"seconds": time.perf_counter() - start,
                   "bytes": (Path(out) / "baseline.onnx").stat().st_size},
                  open(Path(out) / "baseline.json", "w"))
        return
    start = time.perf_counter()
    path = export_web(model, out, runtime=runtime, upsampling=upsampling)
    seconds = time.perf_counter() - start
    from pix2pix_tf.exporters.onnx import run_onnx
    from pix2pix_tf.networks import as_generator

    x = np.random.default_rng(0).uniform(-1, 1, (2, 256, 256, 3)).astype("float32")
    from pix2pix_tf.inference import inference_mode

    with inference_mode(as_generator(model), "deterministic"):
        reference = as_generator(model)(x, training=False).numpy()
    outputs, _ = run_onnx(path, x)
    mse = float(np.mean(((outputs - reference) / 2) ** 2))
    json.dump({"seconds": seconds, "psnr": 10 * np.log10(1 / mse) if mse else float("inf"),
               "bytes": path.stat().st_size}, open(Path(out) / "export.json", "w"))


def export(kind, out, baseline, runtime, model_path, upsampling="transpose"):
    command = [sys.executable, __file__, "--child", kind, str(out), str(runtime),
               model_path or "-", upsampling] + (["--baseline"] if baseline else [])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, code, usage = os.wait4(process.pid, 0)
    if code:
        raise SystemExit(f"export of {kind} failed ({code})")
    result = json.load(open(Path(out) / ("baseline.json" if baseline else "export.json")))
    result["peak_gb"] = usage.ru_maxrss / 1e6
    return result


def time_page(browser, url, image, threads, warmup, runs):
    page = browser.new_page()
    start = time.perf_counter()
    page.goto(f"{url}?threads={threads}")
    page.wait_for_function("() => /^(ready|error)/.test(document.getElementById('status')"
                           ".textContent)", timeout=300000)
    load = time.perf_counter() - start
    text = page.inner_text("#status")
    if text.startswith("error"):
        raise SystemExit(text)
    page.set_input_files("#image-file", str(image))
    times, end = [], time.perf_counter() + warmup
    while True:
        page.evaluate("document.getElementById('status').textContent = ''")
        page.click("#run")
        page.wait_for_function("() => /done in \\d+ ms$|^error/.test(document.getElementById("
                               "'status').textContent)", timeout=300000)
        ms = re.search(r"done in (\d+) ms$", page.inner_text("#status"))
        if ms is None:
            raise SystemExit(page.inner_text("#status"))
        if time.perf_counter() > end:
            times.append(int(ms.group(1)))
            if len(times) >= runs:
                break
    page.close()
    return load, statistics.median(times), min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runtime", default=".ci/node", help="a local onnxruntime-web copy")
    p.add_argument("--kinds", nargs="*", default=["quick", "unet_256"])
    p.add_argument("--model", help="a trained .keras file instead of random weights")
    p.add_argument("--baseline", action="store_true")
    p.add_argument("--warmup", type=float, default=20, help="seconds of runs before timing")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--upsampling", nargs="*", default=["transpose", "subpixel"],
                   help="the page's up-convolution graphs to time side by side")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, out, runtime, model, upsampling = args.child
        return export_child(kind, out, args.baseline, runtime, None if model == "-" else model,
                            upsampling)

    from PIL import Image
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp())
    image = work / "photo.png"
    import numpy as np

    base = np.random.default_rng(0).uniform(0, 255, (8, 8, 3)).astype(np.uint8)
    Image.fromarray(base).resize((256, 256), Image.BICUBIC).save(image)
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for kind in args.kinds:
            for upsampling in args.upsampling:
                rows += time_kind(browser, kind, upsampling, work, image, args)
        browser.close()
    shutil.rmtree(work)
    print("\n| model | graph | file | threads | load s | median ms | best ms |")
    print("|---|---|---|---|---|---|---|")
    for kind, upsampling, label, threads, load, median, best in rows:
        print(f"| {kind} | {upsampling} | {label} | {threads} | {load:.1f} | {median:.0f} | "
              f"{best:.0f} |")
    for kind in args.kinds:
        for threads in (1, 2):
            ms = {(r[1], r[2]): r[5] for r in rows if r[0] == kind and r[3] == threads}
            first = args.upsampling[0]
            for (upsampling, label), median in ms.items():
                if (upsampling, label) != (first, "float16 page"):
                    print(f"{kind} {threads} thread(s): {upsampling} {label} / {first} page = "
                          f"{median / ms[(first, 'float16 page')]:.2f}")


def time_kind(browser, kind, upsampling, work, image, args):
    """Exports ``kind`` with ``upsampling`` and times its page (and the old conversion's file
    with --baseline) at 1 and 2 threads; returns the rows."""
    from pix2pix_tf.cli.webserver import make_server, url_of

    out, rows = work / f"{kind}_{upsampling}", []
    result = export(kind, out, False, args.runtime, args.model, upsampling)
    if args.baseline:
        old = export(kind, out, True, args.runtime, args.model)
        print(f"{kind}: old conversion {old['seconds']:.1f} s, peak {old['peak_gb']:.2f}"
              f" GB, {old['bytes'] / 1e6:.2f} MB float32", flush=True)
    server = make_server(out, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    files = [("float16 page", None)] + ([("baseline file", "baseline.onnx")]
                                        if args.baseline else [])
    for label, swap in files:
        if swap:  # the same page, the old conversion's file
            config = json.loads((out / "model.json").read_text())
            config.update(model=swap, model_bytes=(out / swap).stat().st_size)
            (out / "model.json").write_text(json.dumps(config))
        for threads in (1, 2):
            load, median, best = time_page(browser, url_of(server), image, threads,
                                           args.warmup, args.runs)
            rows.append((kind, upsampling, label, threads, load, median, best))
            print(f"{kind:9s} {upsampling:9s} {label:14s} {threads} thread(s): load {load:.1f} "
                  f"s, {median:.0f} ms median, {best:.0f} ms best", flush=True)
    server.shutdown()
    print(f"{kind} {upsampling}: export {result['seconds']:.1f} s, peak {result['peak_gb']:.2f} "
          f"GB (the page's export), model {result['bytes'] / 1e6:.2f} MB, PSNR vs Keras "
          f"{result['psnr']:.1f} dB", flush=True)
    return rows


if __name__ == "__main__":
    main()
