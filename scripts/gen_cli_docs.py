"""Regenerate docs/cli.md from the commands' ``--help``: ``.venv/bin/python scripts/gen_cli_docs.py``."""

from __future__ import annotations

from pathlib import Path

from pubdata.cli.main import app
from pubdata.cli.reference import cli_reference

TARGET = Path(__file__).resolve().parent.parent / "docs" / "cli.md"

if __name__ == "__main__":
    TARGET.write_text(cli_reference(app), "utf-8")
    print(f"wrote {TARGET}")
