"""Which clauses of the regulation the tests prove: the requirement list and the ``req`` marker.

Each requirement (REQ-n) of the list the package ships (``data/requirements.md``) is split into
clauses, one per obligation (REQ-32: masking, generalisation, …, Laplace noise). A test names the
clauses it proves with ``@pytest.mark.req("REQ-32", "k-anonymity")``; `pubdata.conformance_report`
turns the results into a state per clause and per requirement, proved only when every clause is.
A whole-REQ marker ``req("REQ-32")`` is refused at collection: it let one test of one technique
print "proved" for all six, and evidence that flatters is worse than a gap that is named.

This module is also a pytest plugin (``-p pubdata.conformance``, and imported by the suite's
``conftest.py``): it checks every ``req`` marker against the shipped list and copies it into JUnit
``<property name="req" value="REQ-n:clause">`` elements, so the XML of any run carries the mapping and
no second collection pass is needed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

#: ``- **REQ-12** [R] Objections (异议): …`` — the id, the tag and the text up to the line's end.
_REQ_LINE = re.compile(r"^- \*\*(REQ-\d+)\*\* \[([CR])\] (.+)$")
#: ``  - `k-anonymity` — k-anonymity`` — a clause of the requirement above it.
_CLAUSE_LINE = re.compile(r"^  - `([a-z0-9-]+)` — (.+)$")


@dataclass(frozen=True)
class Clause:
    slug: str
    text: str


@dataclass(frozen=True)
class Requirement:
    id: str
    #: ``C`` confirmed from the text of the regulation, ``R`` reconstructed (a setting).
    tag: str
    summary: str
    clauses: tuple[Clause, ...] = ()


def requirements(text: str | None = None) -> list[Requirement]:
    """The requirements of the shipped list (or of `text`) with their clauses, in their order."""
    if text is None:
        text = resources.files("pubdata.data").joinpath("requirements.md").read_text("utf-8")
    items: list[tuple[str, list[Clause]]] = []
    for line in text.splitlines():
        clause = _CLAUSE_LINE.match(line)
        if line.startswith("- **REQ-"):
            items.append((line, []))
        elif items and clause:
            items[-1][1].append(Clause(*clause.groups()))
        elif items and line.startswith("    ") and items[-1][1]:  # a wrapped clause goes on
            last = items[-1][1][-1]
            items[-1][1][-1] = Clause(last.slug, f"{last.text} {line.strip()}")
        elif items and line.startswith("  ") and line.strip() and not items[-1][1]:
            items[-1] = (items[-1][0] + " " + line.strip(), [])  # a wrapped line continues the item
        elif items and (not line.strip() or not line.startswith("  ")):
            items.append(("", []))
    found: list[Requirement] = []
    for item, clauses in items:
        match = _REQ_LINE.match(item)
        if match:
            req_id, tag, body = match.groups()
            found.append(Requirement(req_id, tag, first_sentence(body), tuple(clauses)))
    return found


@cache
def _shipped() -> dict[str, tuple[str, ...]]:
    return {r.id: tuple(c.slug for c in r.clauses) for r in requirements()}


def marker_problem(args: tuple[object, ...]) -> str | None:
    """Why ``req(*args)`` does not name clauses of the shipped list, or None when it does.

    >>> marker_problem(("REQ-32", "k-anonymity")) is None
    True
    >>> marker_problem(("REQ-32",))
    'names no clause of REQ-32; write req("REQ-32", "<clause>") with one of: masking, generalisation, …'
    """
    known = _shipped()
    if not args or str(args[0]) not in known:
        return f"names {args[0] if args else 'nothing'}, which the requirements list does not have"
    req, clauses = str(args[0]), known[str(args[0])]
    if len(args) == 1:
        choices = ", ".join(clauses[:2] + (("…",) if len(clauses) > 2 else ()))
        return f'names no clause of {req}; write req("{req}", "<clause>") with one of: {choices}'
    unknown = [str(a) for a in args[1:] if a not in clauses]
    if unknown:
        return f"names {', '.join(unknown)}, which {req} does not have (its clauses: {', '.join(clauses)})"
    return None


def marker_problems(folder: Path) -> list[str]:
    """``file:line: problem`` for each ``pytest.mark.req(...)`` under `folder` naming no known clause.

    Read from the source, without collecting: cheap enough to run before a long test run, and it
    names the markers that parallel workers would otherwise report only as a crash.
    """
    problems: list[str] = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.mark.req":
                try:
                    args = tuple(ast.literal_eval(a) for a in node.args)
                except ValueError:
                    problems.append(
                        f"{path}:{node.lineno}: names its clauses through names; write the strings"
                    )
                    continue
                if problem := marker_problem(args):
                    problems.append(f"{path}:{node.lineno}: @pytest.mark.req{args!r} {problem}")
    return problems


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "req(id, *clauses): the clauses of a requirement (REQ-n) this test proves"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse markers that name no known clause; carry the rest into JUnit XML properties (idempotent)."""
    problems: list[str] = []
    for item in items:
        for mark in item.iter_markers("req"):
            problem = marker_problem(mark.args)
            if problem:
                problems.append(f"{item.nodeid}: @pytest.mark.req{mark.args!r} {problem}")
                continue
            for clause in mark.args[1:]:
                prop = ("req", f"{mark.args[0]}:{clause}")
                if prop not in item.user_properties:
                    item.user_properties.append(prop)
    if problems:
        import pytest  # here: the CLI imports this module where pytest may be absent

        raise pytest.UsageError("requirement markers must name clauses:\n" + "\n".join(problems))


#: Longest summary a report line shows; the full text stays in the list.
SUMMARY_LIMIT = 100


def first_sentence(text: str) -> str:
    """The text up to its first full stop outside parentheses, shortened to `SUMMARY_LIMIT`.

    >>> first_sentence("Objections (异议): a consumer flags a record (e.g. a name). More.")
    'Objections (异议): a consumer flags a record (e.g. a name)'
    """
    depth = 0
    end = len(text)
    for i, char in enumerate(text):
        depth += char in "(（"
        depth -= char in ")）" and depth > 0
        if char == "." and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
            end = i
            break
    sentence = text[:end].strip()
    if len(sentence) > SUMMARY_LIMIT:
        sentence = sentence[: SUMMARY_LIMIT - 1].rstrip() + "…"
    return sentence
