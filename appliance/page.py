"""The page process: a Flask app factory, served by waitress (never Flask's dev server).

It opens the record read-only and sends its few commands through the daemon's socket.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, jsonify

from appliance.control import ControlClient, ControlError


def create_app(config, data_dir: Path, socket: Path) -> Flask:
    app = Flask(__name__)
    daemon = ControlClient(socket, timeout=2.0)

    @app.get("/healthz")
    def healthz():
        try:
            daemon.call("status")
        except ControlError:
            return jsonify(ok=False), 503
        return jsonify(ok=True)

    return app


def serve(config, data_dir: Path, socket: Path, host: str, port: int) -> int:
    from waitress import serve as waitress_serve

    app = create_app(config, data_dir, socket)
    waitress_serve(app, host=host, port=port, threads=8, ident=None)
    return 0
