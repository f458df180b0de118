"""A sharing request cannot probe the catalogue for another organisation's drafts: adding a draft
entry to the cart is answered exactly as adding an unknown code."""

from __future__ import annotations

from pathlib import Path

import pytest

from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo
from pubdata.errors import NotFound
from pubdata.workspace import Workspace
from requests_support import NOW, file_request

#: The demo's entry held back in draft (its provider names no responsible persons).
DRAFT = "jgzgh_courier_dormitory_rooms"


def test_a_draft_in_the_cart_is_answered_as_an_unknown_entry(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    answers = []
    for code in (DRAFT, "no_such_entry"):
        with pytest.raises(NotFound) as caught:
            file_request(workspace, [{"entry_code": code, "fields": ["name"]}], submit=False)
        answers.append(str(caught.value).replace(code, "<code>"))
    assert answers[0] == answers[1]
