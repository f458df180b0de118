"""Secret keys of a workspace: created once, kept in files only the owner can read.

Keys never go into the metadata database, the settings file, SQL text or logs. Each purpose has
its own key so that one leaking does not expose the others: pseudonym keys of grants are derived
from ``pseudonym.key``, the audit subject index uses ``audit-subject.key``, checkpoints are signed
with ``audit-signing.key``.

Example:
    >>> import tempfile, pathlib
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> key = workspace_key(home, "pseudonym")
    >>> len(key), workspace_key(home, "pseudonym") == key
    (32, True)
    >>> oct((home / "keys" / "pseudonym.key").stat().st_mode & 0o777)
    '0o600'
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pubdata.errors import PubdataError

KEY_NAMES = ("pseudonym", "audit-subject", "audit-signing")


def workspace_key(home: Path, name: str, size: int = 32) -> bytes:
    """The key called `name`, created with `size` random bytes on first use (atomically, mode 0600)."""
    if name not in KEY_NAMES:
        raise PubdataError(f"unknown key {name!r}")
    directory = home / "keys"
    path = directory / f"{name}.key"
    if path.exists():
        return path.read_bytes()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(size))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() fails if another process created the key first: then theirs wins and is read back.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def derive_key(master: bytes, purpose: str) -> bytes:
    """A sub-key for one purpose (e.g. ``grant:17``): HMAC-SHA256 of the purpose under `master`."""
    return hmac.new(master, purpose.encode("utf-8"), hashlib.sha256).digest()
