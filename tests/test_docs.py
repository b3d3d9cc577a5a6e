"""The docs must stay honest: every dotted ``pix2pix_tf`` name, every repository path and every
command-line flag they write must exist. Fast: nothing is trained, run or downloaded."""

import argparse
import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = sorted((ROOT / "pix2pix_tf").rglob("*.py"))

NAME = re.compile(r"(?<![\w./-])pix2pix_tf(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
#: A dotted name ending in one of these is a file name written with dots, not a Python name.
FILE_SUFFIXES = {"py", "txt", "json", "md", "png", "ipynb", "toml", "cfg", "csv", "keras", "onnx",
                 "tflite", "html", "js", "css", "jsonl", "pth", "egg"}
#: Dotted names that are not meant to resolve, each with its reason. Keep this tiny.
ALLOWED_NAMES = {}

#: The repository's top-level folders: a path starting with one of them is a repository path.
TOP_LEVEL = ("pix2pix_tf", "tests", "benchmarks", "docs", "export", "notebooks", "tools", ".ci")
PATH = re.compile(r"(?<![\w./~:-])(?:%s)/[\w./<>*-]*" % "|".join(re.escape(t) for t in TOP_LEVEL))
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
SOURCE_FILE = re.compile(r"^[\w.-]+\.(?:py|md|ipynb|toml|cfg)$")


def names_in(text):
    for match in NAME.finditer(text):
        name = match.group(0)
        if name.rsplit(".", 1)[1] in FILE_SUFFIXES:
            continue  # a file written with dots (its path form is checked by the path test)
        yield name


def test_pages_and_sources_are_found():
    assert len(PAGES) >= 12 and all(page.is_file() for page in PAGES)
    assert len(SOURCES) > 50


def resolves(name):
    """A module, or an attribute chain from the longest module prefix."""
    import pix2pix_tf  # noqa: F401

    parts = name.split(".")
    prefix, spec, used = parts[0], importlib.util.find_spec(parts[0]), 1
    # descend only through packages, so that finding a spec never executes a module
    while used < len(parts) and spec.submodule_search_locations is not None:
        importlib.import_module(prefix)
        sub = importlib.util.find_spec(f"{prefix}.{parts[used]}")
        if sub is None:
            break
        prefix, spec, used = f"{prefix}.{parts[used]}", sub, used + 1
    if used == len(parts):
        return True
    obj = importlib.import_module(prefix)
    for part in parts[used:]:
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def test_dotted_names_exist():
    """Every ``pix2pix_tf.x.y`` in the pages and in the package's own docstrings and comments is a
    module, or an attribute of the longest module prefix."""
    found = {}
    for path in PAGES + SOURCES:
        for name in names_in(path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert len(found) > 100
    broken = {name: sorted(where) for name, where in found.items()
              if name not in ALLOWED_NAMES and not resolves(name)}
    assert not broken, f"names that do not exist: {broken}"
    import pix2pix_tf

    # resolving imported entry modules without replacing the package's functions of their name
    assert pix2pix_tf.train is pix2pix_tf.training.train
    assert pix2pix_tf.export is pix2pix_tf.exporters.export_model


def paths_in(page):
    """Repository paths a page writes: (path relative to the root, as written)."""
    text = page.read_text(encoding="utf-8")
    for match in PATH.finditer(text):  # anywhere: prose, code spans, code blocks
        yield match.group(0).rstrip(".,:;"), match.group(0)
    for target in LINK.findall(text):  # links are relative to the page
        target = target.split("#")[0]
        if target and "://" not in target and not target.startswith("mailto:"):
            yield str((page.parent / target).resolve().relative_to(ROOT)), target
    for span in CODE_SPAN.findall(text):  # a bare source file name means the root's
        if SOURCE_FILE.match(span.strip()):
            yield span.strip(), span


def without_placeholder(path):
    """``<name>`` and globs stand for files: what is checked is the folder before them
    (``pix2pix_tf/tasks/<name>/`` -> ``pix2pix_tf/tasks/``). Everything not starting with a
    top-level folder (``runs/``, ``exports/``, ``out/``, ``~/...``, ``logs/``, ``PHOTOS``, URLs)
    is a file the commands or the user write, not a repository path, and is not matched at all."""
    marks = [path.index(c) for c in "<*" if c in path]
    return path[:path.rfind("/", 0, min(marks)) + 1] if marks else path


def test_repository_paths_exist():
    checked, broken = set(), []
    for page in PAGES:
        for path, written in paths_in(page):
            path = without_placeholder(path)
            checked.add(path)
            if not (ROOT / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {written}")
    assert len(checked) > 30
    assert not broken, f"paths that do not exist: {broken}"


def command_lines(page):
    """The lines of a page's ```bash blocks (continuation lines joined) and its inline code spans
    that run ``python -m pix2pix_tf.X`` (a span may wrap over lines)."""
    text = page.read_text(encoding="utf-8")
    for block in re.findall(r"^```bash\n(.*?)^```$", text, re.S | re.M):
        yield from block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"^```.*?^```$", "", text, flags=re.S | re.M)
    for span in re.findall(r"`([^`]+)`", prose):
        if "python -m pix2pix_tf." in span:
            yield " ".join(span.split())


def commands(page):
    """The ``python -m pix2pix_tf.X ...`` commands of a page, environment assignments and
    ``&&`` chains split off: (module, args, line)."""
    for line in command_lines(page):
        segment = []
        for token in shlex.split(line, comments=True) + ["&&"]:
            if token not in ("&&", "||", ";", "|"):
                segment.append(token)
                continue
            while segment and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", segment[0]):
                segment.pop(0)  # TF_CONFIG='...' python -m ...
            if segment[:2] == ["python", "-m"] and segment[2].startswith("pix2pix_tf."):
                yield segment[2], segment[3:], line.strip()
            segment = []


class _Parser(Exception):
    pass


def command_parser(module, monkeypatch):
    """The argparse parser a command's ``main`` builds, caught at its ``parse_args`` call (the
    command itself never runs). ``python -m pix2pix_tf.X`` runs ``pix2pix_tf.cli.X``'s main."""
    if not module.startswith("pix2pix_tf.cli."):
        entry = ROOT / Path(*module.split(".")).with_suffix(".py")
        cli_name = "pix2pix_tf.cli." + module.rsplit(".", 1)[1]
        assert f"from {cli_name} import main" in entry.read_text(), entry
        module = cli_name
    main = importlib.import_module(module).main

    def catch(parser, *args, **kwargs):
        raise _Parser(parser)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        with pytest.raises(_Parser) as caught:
            main([])
    return caught.value.args[0]


def test_documented_flags_exist(monkeypatch, capsys):
    """Every flag of every ``python -m pix2pix_tf.X`` command in the pages (bash blocks and
    inline code) is one of that command's own options, written in full (argparse would also take
    an abbreviation), and the whole command parses."""
    import pix2pix_tf  # noqa: F401

    parsers, checked, broken = {}, 0, []
    for page in PAGES:
        for module, args, line in commands(page):
            if module not in parsers:
                parsers[module] = command_parser(module, monkeypatch)
            parser = parsers[module]
            for flag in (a.split("=", 1)[0] for a in args if a.startswith("--")):
                checked += 1
                if flag not in parser._option_string_actions:
                    broken.append(f"{page.relative_to(ROOT)}: {flag} in: {line}")
            try:
                parser.parse_args(args)
            except SystemExit:
                broken.append(f"{page.relative_to(ROOT)}: does not parse "
                              f"({capsys.readouterr().err.strip().splitlines()[-1]}): {line}")
    assert {"pix2pix_tf.train", "pix2pix_tf.predict", "pix2pix_tf.evaluate", "pix2pix_tf.export",
            "pix2pix_tf.edit", "pix2pix_tf.serve", "pix2pix_tf.cli.make_pairs"} <= set(parsers)
    assert checked > 40
    assert not broken, "\n".join(broken)
