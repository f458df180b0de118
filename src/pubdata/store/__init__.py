"""The versioned dataset store: one Delta Lake table per catalogue entry."""
