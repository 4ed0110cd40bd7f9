"""The Braintrust-compatible local data plane: a SQLite store served over HTTP (layout in docs/ARCHITECTURE.md)."""
