"""The sharing gateway: identities, policies, de-identification and the sandboxed query engine."""
