"""Several docks, one history: each dock's events signed, kept in its own record, and
carried to its peers over an MQTT broker (Mosquitto). The broker is a transport, never
the record: every dock's SQLite file stays the truth, and catches up from its peers.

Import order: core <- hardware <- record <- fleet <- daemon.
"""
