"""The record: the SQLite store, its migrations, the hash-chained audit trail, password
hashes and the CSV export. Only the daemon writes it; the page and CLI read it."""
