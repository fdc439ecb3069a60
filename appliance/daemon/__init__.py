"""The daemon: the dock's state machine around the rules, its loop, the control socket
and the commands it takes. It alone owns the GPIO pins and writes the record."""
