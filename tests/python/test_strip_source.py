"""Unit tests of templates/pyodide/strip_source.py, run by `cargo test` (tests/all/python.rs)
under the machine's CPython, which parses what these sources use."""

import pathlib
import sys
import traceback
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "templates" / "pyodide"))
from strip_source import strip, strip_all  # noqa: E402

SOURCE = b'''"""Module docstring,
on two lines."""
from __future__ import annotations
import os  # why os


# a comment alone
def double(x):
    """Twice x.

    At length."""
    return x * 2  # trailing


class Only:
    """Nothing but a docstring."""


def hash_in_string():
    return "# not a comment", '"""neither"""'


def fails():
    raise ValueError("line 24")
'''


def run(source):
    namespace = {}
    exec(compile(source, "m.py", "exec"), namespace)
    return namespace


class Strip(unittest.TestCase):
    def test_keeps_behaviour_and_every_line_number(self):
        stripped, why = strip(SOURCE)
        self.assertIsNone(why)
        self.assertLess(len(stripped), len(SOURCE))
        self.assertEqual(stripped.count(b"\n"), SOURCE.count(b"\n"))
        self.assertNotIn(b"Twice", stripped)
        self.assertNotIn(b"why os", stripped)
        before, after = run(SOURCE), run(stripped)
        self.assertEqual(after["double"](21), 42)
        self.assertEqual(after["hash_in_string"](), before["hash_in_string"]())
        self.assertIsNone(after["Only"].__doc__)
        self.assertIsNone(after["double"].__doc__)
        for namespace in (before, after):
            try:
                namespace["fails"]()
            except ValueError:
                line = traceback.extract_tb(sys.exc_info()[2])[-1].lineno
            self.assertEqual(line, 24)

    def test_a_module_that_may_read_docstrings_loses_only_comments(self):
        source = b'def f():\n    """Used."""\n    return f.__doc__  # read\n'
        stripped, why = strip(source)
        self.assertEqual(why, "may read docstrings")
        self.assertEqual(run(stripped)["f"](), "Used.")
        self.assertNotIn(b"# read", stripped)

    def test_a_change_to_the_code_is_refused(self):
        # The docstring's statement shares its line with code: blanking it would break the line.
        source = b'def f():\n    """a\n    b"""; x = 1\n    return 2\n'
        stripped, why = strip(source)
        self.assertIsNone(stripped)
        self.assertEqual(why, "stripping would change its code")

    def test_sources_that_cannot_be_read_ship_as_they_are(self):
        self.assertEqual(strip(b"# caf\xe9\nx = 1\n"), (None, "not UTF-8"))
        self.assertEqual(strip(b"def (:\n"), (None, "does not parse"))
        self.assertEqual(strip(b"x = 1\n"), (None, None))

    def test_strip_all_reports_what_stays(self):
        stripped, kept = strip_all({
            "a.py": SOURCE,
            "b.py": b"x = 1\n",
            "c.py": b"'''doc'''\nimport pydoc  # c\n",
        })
        self.assertEqual(sorted(stripped), ["a.py", "c.py"])
        self.assertEqual(kept, {"c.py": "may read docstrings"})
        self.assertIn(b"'''doc'''", stripped["c.py"])


if __name__ == "__main__":
    unittest.main()
