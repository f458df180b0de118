"""The HTTP API: read-only catalogue endpoints for now; data rows come with the sharing gateway."""

from pubdata.api.app import create_app

__all__ = ["create_app"]
