"""How the page answers when something is wrong: JSON for the API, plain text for the
CSV, an HTML page for people; never a stack trace. And the daemon's refusals in words."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from appliance.daemon.control import BadRequest, ControlError, DaemonUnavailable, Denied, Refused
from appliance.record.store import StoreError

log = logging.getLogger("pendock.page")


def api_error(message: str, code: int, headers: dict | None = None) -> Response:
    response = jsonify(error=message)
    response.status_code = code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def text_error(message: str, code: int) -> Response:
    return Response(message + "\n", status=code, mimetype="text/plain")


def page_error(message: str, code: int) -> tuple[str, int]:
    return render_template("error.html", message=message, code=code), code


def error_response(message: str, code: int):
    if request.path.startswith("/api/"):
        return api_error(message, code)
    if request.path.startswith("/export.csv"):
        return text_error(message, code)
    return page_error(message, code)


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        plain = {404: "There is no such page here.", 405: "That is not how this page is used.",
                 413: "What was sent is too large."}
        return error_response(plain.get(error.code, error.description or error.name), error.code or 500)

    @app.errorhandler(StoreError)
    def record_error(error: StoreError):
        log.error("record: %s", error)
        return error_response(f"The record cannot be read: {error}", 503)

    @app.errorhandler(Exception)
    def any_error(error: Exception):
        log.exception("page error on %s %s", request.method, request.path)
        return error_response("Something went wrong on the dock's page; it has been logged. "
                              "Try again, and call the technician if it keeps happening.", 500)


def control_words(error: ControlError) -> str:
    if isinstance(error, DaemonUnavailable):
        return "The dock is not answering, so nothing was changed. Try again in a moment."
    if isinstance(error, Refused):
        return f"Refused: {error}"
    if isinstance(error, Denied):
        return f"Not allowed: {error}"
    return str(error)


def control_code(error: ControlError) -> int:
    if isinstance(error, DaemonUnavailable):
        return 503
    if isinstance(error, Refused):
        return 409
    if isinstance(error, Denied):
        return 403
    if isinstance(error, BadRequest):
        return 400
    return 502
