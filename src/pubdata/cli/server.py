"""Running the API for a workspace (used by ``serve`` and by ``demo`` once the demo is built)."""

from __future__ import annotations

import contextvars

import typer

from pubdata.workspace import Workspace


def run_server(workspace: Workspace, host: str, port: int) -> None:
    import uvicorn  # imported here: only the serving commands pay for it

    from pubdata.api.app import create_app

    typer.echo(f"Serving {workspace.home} at http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    # A fresh context: what it serves comes through the API, not through the command that started it.
    contextvars.Context().run(uvicorn.run, create_app(workspace), host=host, port=port, log_level="info")
