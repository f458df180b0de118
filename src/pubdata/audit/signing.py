"""Ed25519 signatures over checkpoint statements.

The private key is the workspace's ``audit-signing`` seed (32 bytes, owner-only file); the database
never holds it, so someone who can rewrite the database still cannot sign a checkpoint for a
rewritten chain. Verification needs only the public key, which `public_key_pem` exports so that an
auditor can keep it outside the workspace and check a copy of the database on their own machine.

Example:
    >>> import tempfile, pathlib
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> statement = checkpoint_statement(7, "ab" * 32, 7, "2025-01-01T00:00:00.000000", key_id(home))
    >>> signature = signing_key(home).sign(statement).hex()
    >>> signature_valid(public_key(home), statement, signature)
    True
    >>> signature_valid(public_key(home), statement.replace(b"7", b"8"), signature)
    False
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pubdata.errors import InputError
from pubdata.keys import workspace_key

#: Tag of the statement format, signed with it so that a statement cannot be replayed as another.
STATEMENT_FORMAT = "pubdata-audit-checkpoint/1"


def signing_key(home: Path) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(workspace_key(home, "audit-signing"))


def public_key(home: Path) -> Ed25519PublicKey:
    return signing_key(home).public_key()


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, in hex: what a checkpoint records as its signer."""
    return hashlib.sha256(_raw(key)).hexdigest()


def key_id(home: Path) -> str:
    return key_id_of(public_key(home))


def public_key_pem(home: Path) -> str:
    return (
        public_key(home)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def load_public_key(data: bytes | str | Ed25519PublicKey) -> Ed25519PublicKey:
    """A public key from PEM text, 32 raw bytes or 64 hex characters."""
    if isinstance(data, Ed25519PublicKey):
        return data
    raw = data.encode("ascii") if isinstance(data, str) else data
    if raw.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(raw)
        if not isinstance(key, Ed25519PublicKey):
            raise InputError("the public key is not an Ed25519 key")
        return key
    if len(raw.strip()) == 64:
        raw = bytes.fromhex(raw.strip().decode("ascii"))
    if len(raw) != 32:
        raise InputError("a public key must be PEM, 32 raw bytes or 64 hex characters")
    return Ed25519PublicKey.from_public_bytes(raw)


def checkpoint_statement(
    last_event_id: int, last_event_hash: str, event_count: int, signed_at: str, signer: str
) -> bytes:
    """The exact bytes signed: canonical JSON of what the checkpoint asserts."""
    return json.dumps(
        [STATEMENT_FORMAT, last_event_id, last_event_hash, event_count, signed_at, signer],
        separators=(",", ":"),
    ).encode("ascii")


def signature_valid(key: Ed25519PublicKey, statement: bytes, signature_hex: str) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), statement)
    except (InvalidSignature, ValueError):
        return False
    return True
