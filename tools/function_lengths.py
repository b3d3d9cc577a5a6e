"""No function in the package over 60 lines: run in CI (.ci/run) and by tests/test_function_lengths.py.

Walks pix2pix_tf/**/*.py with `ast` and, for every function and method (nested ones too, each on
its own), counts its lines from the `def` line to its last line, *not counting docstrings*: a
docstring is documentation, not code, and a long explanation should never push a function into
being split. The docstrings left out are the function's own and those of the functions and classes
nested in it; comments and blank lines count, as they do when one reads the function. Decorators
stand above the `def` line and do not count.

Every function over LIMIT such lines is printed as `path:line name N`. The check fails (exit 1)
for any of them that is not in ALLOWED, and for any ALLOWED entry that is no longer over LIMIT (or
no longer exists): a stale exception is removed, not kept. Keys are "path::qualname", the path
relative to the repository and the qualname dotted (`Class.method`, `outer.inner`); every entry
carries a one-line reason.

    python tools/function_lengths.py
"""

import ast
import sys
from pathlib import Path

LIMIT = 60
ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "pix2pix_tf"

ALLOWED = {}

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DOCUMENTED = (*_FUNCTIONS, ast.ClassDef)


def _docstring_lines(node):
    """The line numbers of `node`'s docstring, or an empty set if it has none."""
    first = node.body[0] if node.body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return set(range(first.lineno, first.end_lineno + 1))
    return set()


def function_length(node):
    """Lines of the function `node` from its `def` line to its end, less the docstrings in it."""
    docstrings = set()
    for inner in ast.walk(node):
        if isinstance(inner, _DOCUMENTED):
            docstrings |= _docstring_lines(inner)
    return node.end_lineno - node.lineno + 1 - len(docstrings)


def _functions(tree):
    """(qualname, node) for every function in `tree`, nested ones included."""
    stack = [("", child) for child in ast.iter_child_nodes(tree)]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, _DOCUMENTED):
            qualname = prefix + node.name
            if isinstance(node, _FUNCTIONS):
                yield qualname, node
            prefix = qualname + "."
        stack.extend((prefix, child) for child in ast.iter_child_nodes(node))


def source_long_functions(source, path, limit=LIMIT):
    """(path, line, qualname, length) for every function of `source` over `limit` lines."""
    tree = ast.parse(source, filename=path)
    found = [(path, node.lineno, qualname, function_length(node)) for qualname, node in _functions(tree)]
    return sorted(f for f in found if f[3] > limit)


def long_functions(root=ROOT, limit=LIMIT):
    """(path, line, qualname, length) for every function of the package over `limit` lines."""
    root = Path(root)
    found = []
    for file in sorted((root / PACKAGE).rglob("*.py")):
        path = file.relative_to(root).as_posix()
        found += source_long_functions(file.read_text(encoding="utf-8"), path, limit)
    return found


def problems(found, allowed=None):
    """What fails the check: long functions not in `allowed`, `allowed` entries no longer long, and
    `allowed` entries without a one-line reason."""
    allowed = ALLOWED if allowed is None else allowed
    keys = {f"{path}::{qualname}" for path, _, qualname, _ in found}
    unlisted = [f"{path}:{line} {qualname} {n} lines: over {LIMIT}; split it, or add it to ALLOWED with a reason"
                for path, line, qualname, n in found if f"{path}::{qualname}" not in allowed]
    stale = [f"{key}: in ALLOWED but not over {LIMIT} lines (or gone); remove the entry"
             for key in sorted(allowed) if key not in keys]
    unexplained = [f"{key}: in ALLOWED without a one-line reason" for key, reason in sorted(allowed.items())
                   if not reason.strip() or "\n" in reason.strip()]
    return unlisted + stale + unexplained


def main(root=ROOT):
    found = long_functions(root)
    for path, line, qualname, n in found:
        print(f"{path}:{line} {qualname} {n}")
    failures = problems(found)
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
