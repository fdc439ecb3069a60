"""The therapist's page: a Flask app factory, its view helpers and its logins. It reads
the record read-only and sends its few commands through the daemon's socket."""
