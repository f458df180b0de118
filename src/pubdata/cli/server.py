"""Running the API for a workspace (used by ``serve`` and by ``demo`` once the demo is built)."""

from __future__ import annotations

import contextvars

import typer

from pubdata.workspace import Workspace


def trusted_proxies(forwarded_allow_ips: str) -> list[str]:
    """The proxies named in a ``--forwarded-allow-ips`` value (comma-separated addresses or networks)."""
    return [name.strip() for name in forwarded_allow_ips.split(",") if name.strip()]


def run_server(workspace: Workspace, host: str, port: int, forwarded_allow_ips: str = "") -> None:
    """Serve the app; ``X-Forwarded-*`` headers are believed only from `forwarded_allow_ips`.

    uvicorn's own default believes them from 127.0.0.1, so behind no proxy any local caller could
    pick the address that sign-in lock-outs count and the audit records: with no proxy named, the
    headers are not read at all.
    """
    import uvicorn  # imported here: only the serving commands pay for it

    from pubdata.api.app import create_app

    proxies = trusted_proxies(forwarded_allow_ips)
    typer.echo(f"Serving {workspace.home} at http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    # A fresh context: what it serves comes through the API, not through the command that started it.
    contextvars.Context().run(
        uvicorn.run,
        create_app(workspace),
        host=host,
        port=port,
        log_level="info",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
