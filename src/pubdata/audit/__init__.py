"""The audit log (REQ-40, 41): append-only, hash-chained events with signed checkpoints.

The package follows an event's life: `chain` links it, `events` is the only way in (`record`,
`record_access`), `checkpoints` and `signing` pin the chain with Ed25519 signatures, `verify`
checks everything in one streamed pass, `subjects` and `reports` answer who saw what and why.
No code path updates or deletes an event; a test guards that.
"""

from pubdata.audit.chain import GENESIS, event_digest
from pubdata.audit.checkpoints import register_workspace, write_checkpoint
from pubdata.audit.events import record, record_access, record_refusal
from pubdata.audit.reports import STREAM_OPEN, list_events, outside_purpose, unfinished_streams, who_accessed
from pubdata.audit.signing import key_id, public_key_pem
from pubdata.audit.subjects import subject_hash, subject_hash_sql, subject_hash_variables
from pubdata.audit.verify import Problem, VerificationReport, verify, verify_chain

__all__ = [
    "GENESIS",
    "STREAM_OPEN",
    "Problem",
    "VerificationReport",
    "event_digest",
    "key_id",
    "list_events",
    "outside_purpose",
    "public_key_pem",
    "record",
    "record_access",
    "record_refusal",
    "register_workspace",
    "subject_hash",
    "subject_hash_sql",
    "subject_hash_variables",
    "unfinished_streams",
    "verify",
    "verify_chain",
    "who_accessed",
    "write_checkpoint",
]
