# Strips docstrings and comments from Python sources, for cargo-wasmpack-infer. Runs inside the
# distribution's own interpreter (its `ast` and `tokenize` parse the syntax of its standard
# library), and in the unit tests under any CPython 3.9+.
#
# Every line keeps its number: a docstring becomes `pass` (nothing, for a module's) followed by
# the newlines it spanned, and a comment becomes nothing, so tracebacks and `linecache` still point
# at the right lines. A file ships stripped only if its stripped source parses to the same tree as
# the original with its docstrings replaced that way, every statement on its original line.
# Sources that may read docstrings (they name `__doc__`, `getdoc`, `doctest` or `pydoc`) keep
# theirs and lose only their comments: `-OO`'s docstring rule, limited to modules it cannot hurt.

import ast
import io
import tokenize

READS_DOCSTRINGS = ("__doc__", "getdoc", "doctest", "pydoc")
_SCOPES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _docstrings(tree):
    """(scope, docstring statement) for every scope that has one."""
    for node in ast.walk(tree):
        if isinstance(node, _SCOPES) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                yield node, first


def _shape(tree):
    """The tree as `ast.dump` prints it, and the line of every statement."""
    return ast.dump(tree), [n.lineno for n in ast.walk(tree) if isinstance(n, ast.stmt)]


def strip(source):
    """`(stripped bytes or None when it ships as is, why its docstrings stay or None)`."""
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8"
    docstrings_stay = "may read docstrings" if any(w in text for w in READS_DOCSTRINGS) else None
    try:
        tree = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, tokenize.TokenError, ValueError):
        return None, "does not parse"
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(lineno, byte_col):
        # ast columns count UTF-8 bytes; str offsets count characters.
        line = lines[lineno - 1].encode("utf-8")
        return starts[lineno - 1] + len(line[:byte_col].decode("utf-8"))

    docstrings = [] if docstrings_stay else list(_docstrings(tree))
    edits = []  # (start, end, replacement), in characters
    for scope, doc in docstrings:
        blank = "\n" * (doc.end_lineno - doc.lineno)
        keep = "" if isinstance(scope, ast.Module) else "pass"
        edits.append((offset(doc.lineno, doc.col_offset), offset(doc.end_lineno, doc.end_col_offset), keep + blank))
    for token in tokens:
        if token.type == tokenize.COMMENT:
            (row, col), (_, end_col) = token.start, token.end
            line = lines[row - 1]
            # Trailing blanks before the comment go too; a comment alone leaves an empty line.
            while col > 0 and line[col - 1] in " \t":
                col -= 1
            edits.append((starts[row - 1] + col, starts[row - 1] + end_col, ""))
    if not edits:
        return None, docstrings_stay
    edits.sort()
    pieces, at = [], 0
    for start, end, replacement in edits:
        if start < at:
            return None, "its comments and docstrings overlap"
        pieces.append(text[at:start])
        pieces.append(replacement)
        at = end
    pieces.append(text[at:])
    stripped = "".join(pieces)

    for scope, doc in docstrings:
        if isinstance(scope, ast.Module):
            scope.body.pop(0)
        else:
            scope.body[0] = ast.copy_location(ast.Pass(), doc)
    try:
        same = _shape(ast.parse(stripped)) == _shape(tree)
    except SyntaxError:
        same = False
    if not same:
        return None, "stripping would change its code"
    return stripped.encode("utf-8"), docstrings_stay


def strip_all(files):
    """{name: bytes} → ({name: stripped bytes}, {name: why its docstrings stay}). Files missing
    from the first map ship as they are."""
    stripped, docstrings_kept = {}, {}
    for name, source in sorted(files.items()):
        result, why = strip(source)
        if result is not None:
            stripped[name] = result
        if why is not None:
            docstrings_kept[name] = why
    return stripped, docstrings_kept
