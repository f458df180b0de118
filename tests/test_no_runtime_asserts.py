"""No `assert` statement guards the package: ``python -O`` removes them, and the check with them.

An invariant the platform relies on at run time is an explicit ``if … raise`` of a typed error
(`pubdata.errors`); a narrowing for the type checker is written so that it does not vanish either.
Doctests (``>>> assert`` in a docstring) are text, not statements, and stay.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src" / "pubdata"


def asserts_in(path: Path) -> list[int]:
    """The lines of the `assert` statements of one module."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]


def test_the_package_holds_no_assert_statements() -> None:
    found = [
        f"{path.relative_to(SOURCE)}:{line}"
        for path in sorted(SOURCE.rglob("*.py"))
        for line in asserts_in(path)
    ]
    assert not found, "raise a typed error instead (python -O drops asserts):\n" + "\n".join(found)


def test_the_scan_sees_statements_and_skips_doctests(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text('"""Example:\n    >>> assert 1 + 1 == 2\n"""\n\n\ndef f(x):\n    assert x\n', "utf-8")
    assert asserts_in(module) == [7]
