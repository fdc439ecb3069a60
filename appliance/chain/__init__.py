"""A chain's records in one place: each clinic's Mosquitto bridged to a central one, and an
ingest worker that writes every dock's signed events into PostgreSQL, each exactly once.

No broker is the truth: the docks' own records are. The worker inserts idempotently by
(dock, sequence), acknowledges each dock's high-water mark back only after its commit, and
asks a dock for the sequences it misses, as the clinic's docks do among themselves.
"""
