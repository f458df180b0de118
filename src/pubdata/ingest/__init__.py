"""Ingestion: the files agencies really have, turned into validated, versioned tables."""
