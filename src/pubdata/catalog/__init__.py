"""The catalogue: what public data exists, who holds it, and how it may be shared and opened."""
