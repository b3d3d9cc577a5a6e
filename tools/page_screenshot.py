"""A screenshot of an exported web page translating one image (for the README).

    python tools/page_screenshot.py exports/quick/web pix2pix_tf/data/demo/test/TILE.jpg \
        docs/web_page.png --half left

``--half left`` takes the left half of a side-by-side pair (the demo's map side). The page is
served on 127.0.0.1 and driven in the system's Chromium; the PNG is reduced to a small palette
image for the README.
"""

import argparse
import shutil
import tempfile
import threading
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from pix2pix_tf.cli.webserver import make_server, url_of


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("page")
    p.add_argument("image")
    p.add_argument("output")
    p.add_argument("--half", choices=["left", "right"])
    p.add_argument("--instruction", help="for an editor's page")
    p.add_argument("--width", type=int, default=760, help="width of the written PNG")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp())
    image = Image.open(args.image).convert("RGB")
    if args.half:
        w, h = image.size
        image = image.crop((0, 0, w // 2, h) if args.half == "left" else (w // 2, 0, w, h))
    source = work / "input.png"
    image.save(source)
    server = make_server(args.page, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or
                                     "/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(url_of(server))
        page.wait_for_function("() => /^(ready|error)/.test(document.getElementById('status')"
                               ".textContent)", timeout=120000)
        page.set_input_files("#image-file", str(source))
        if args.instruction:
            page.fill("#instruction", args.instruction)
            page.press("#instruction", "Enter")
        page.wait_for_function("() => /done in \\d+ ms$|^error/.test(document.getElementById("
                               "'status').textContent)", timeout=120000)
        print(page.inner_text("#status"))
        shot = work / "shot.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    server.shutdown()
    picture = Image.open(shot).convert("RGB")
    picture = picture.resize((args.width, round(picture.height * args.width / picture.width)),
                             Image.LANCZOS)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    picture.quantize(128).save(args.output, optimize=True)
    print(f"{args.output}: {Path(args.output).stat().st_size / 1e3:.0f} KB")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
