"""Serve an exported web page on this machine: ``python -m pix2pix_tf.serve`` (see --help)."""

import argparse
import sys
from pathlib import Path

from pix2pix_tf.cli.common import EXIT_BAD_INPUT, EXIT_OK, HelpFormatter, fail, newest

EXAMPLES = """examples:
  python -m pix2pix_tf.serve                          # the newest exports/*/web folder
  python -m pix2pix_tf.serve exports/quick/web --port 8080

The page needs a web server (browsers do not load its model from file:// addresses). This one
listens on 127.0.0.1 only and sends the cross-origin isolation headers that let the runtime use
several threads; any static file server works too. Ctrl-C stops it.
exit codes: 0 stopped, 2 bad input
"""


def parser():
    p = argparse.ArgumentParser(prog="python -m pix2pix_tf.serve",
                                description="Serve a page written by export --web.",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("folder", nargs="?", help="the page folder (default: the newest "
                                             "exports/*/web)")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--no-isolation", action="store_true",
                   help="leave out the cross-origin isolation headers (the page then runs on "
                        "one thread, as on a plain static host)")
    return p


def newest_page(root="exports"):
    """The most recently written ``exports/*/web`` folder, or None."""
    found = newest("*/web/model.json", root)
    return found.parent if found else None


def serve(folder, port=8000, isolate=True):
    """Serves ``folder`` until Ctrl-C, printing its address; returns the exit code."""
    from pix2pix_tf.cli.webserver import make_server, url_of

    folder = Path(folder)
    if not (folder / "index.html").is_file():
        return fail(f"{folder}: no index.html here; export a page first "
                    "(python -m pix2pix_tf.export MODEL --web).", EXIT_BAD_INPUT)
    try:
        server = make_server(folder, port, isolate=isolate)
    except OSError as error:
        return fail(f"cannot listen on 127.0.0.1:{port} ({error.strerror or error}); pick "
                    "another --port.", EXIT_BAD_INPUT)
    print(f"serving {folder} at {url_of(server)} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return EXIT_OK


def main(argv=None):
    args = parser().parse_args(argv)
    folder = args.folder or newest_page()
    if folder is None:
        return fail("no folder given, and no exports/*/web here: export a page first "
                    "(python -m pix2pix_tf.export MODEL --web).", EXIT_BAD_INPUT)
    return serve(folder, args.port, isolate=not args.no_isolation)


if __name__ == "__main__":
    sys.exit(main())
