"""R3 for the page: every route with generated parameters never answers 500 or shows a traceback.

Hypothesis draws who asks (nobody, a therapist, a manager, an API token), the method, the
route (and odd paths), query strings, form bodies (valid, forged or missing CSRF), odd
headers, and the daemon's mood (answering, down, refusing). Whatever it draws, the answer
is a page or a JSON error a person can act on: never a 500, never Python's traceback.
"""
from __future__ import annotations

import copy
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from appliance.page.auth import LoginThrottle
from appliance.core.config import Config
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web import records
from tests.web.conftest import FakeDaemon, csrf_of

ROUTES = ["/", "/login", "/logout", "/next-client", "/override", "/healthz", "/api/status",
          "/api/sessions", "/export.csv", "/sessions/1/aftercare", "/static/live.js"]
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]
LEAKS = ("Traceback", "File \"", "werkzeug.exceptions", "jinja2.exceptions", "Internal Server Error")

odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=12),
    st.sampled_from(["", " ", "0", "-1", "null", "None", "../../etc/passwd", "%00", "\x00", "<script>",
                     "'; DROP TABLE sessions; --", "9" * 40, "é" * 600, "\ud7ff", "🙂"]),
)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31", "1999-12-31", "2026-1-1",
                     "20261128", "2026-11-28T00:00", "2026-11-28 ", "+2026-11-28", "2026-11-28\n"]),
    odd_text,
)
refs = st.one_of(st.from_regex(r"[A-Z]{2}-\d{1,6}", fullmatch=True), odd_text)
areas = st.one_of(st.sampled_from(["face", "neck", "scalp", "hands", "decolletage"]), odd_text)
codes = st.one_of(st.sampled_from(["client_interval", "checklist_missing", "cartridge_spent", "depth_high",
                                   "no_cartridge", "clock_unsynced"]), odd_text)
checklists = st.lists(st.one_of(st.sampled_from(["screened", "test-area"]), odd_text), max_size=7)
reasons = st.one_of(st.text(min_size=0, max_size=600), st.just("client's dermatologist approved"))
values = st.one_of(dates, refs, areas, codes, reasons, odd_text)
params = st.dictionaries(
    st.one_of(st.sampled_from(["date", "next", "ref", "area", "code", "reason", "checklist", "name",
                               "password", "csrf"]), st.text(max_size=10)),
    values, max_size=6)


def _path_text(text: str) -> str:
    """A path segment: '?' and '#' would start a query or a fragment, not name a path."""
    return text.replace("?", "%3F").replace("#", "%23").lstrip("/")


def paths():
    return st.one_of(
        st.sampled_from(ROUTES),
        st.integers(min_value=-2**70, max_value=2**70).map(lambda n: f"/sessions/{n}/aftercare"),
        odd_text.map(lambda t: "/sessions/" + _path_text(t).replace("/", "") + "/aftercare"),
        odd_text.map(lambda t: "/" + _path_text(t)),
        odd_text.map(lambda t: "/static/" + _path_text(t)),
        odd_text.map(lambda t: "/api/" + _path_text(t)),
    )


headers = st.dictionaries(
    st.sampled_from(["Authorization", "Content-Type", "Accept", "X-Forwarded-For", "Referer", "Origin",
                     "If-Modified-Since", "Range", "Accept-Encoding", "Cookie"]),
    st.one_of(st.sampled_from([f"Bearer {records.TOKEN}", "Bearer ", "Basic dXNlcjpwYXNz", "bearer x" * 40,
                               "multipart/form-data", "application/json", "text/plain; charset=utf-99",
                               "bytes=5-1", "pendock_session=forged", "Sat, 99 Xyz 2026"]),
              st.text(alphabet=string.ascii_letters + string.digits + " =;,/-_.", max_size=60)),
    max_size=3)


@pytest.fixture(scope="module")
def crawl_app(tmp_path_factory):
    data = tmp_path_factory.mktemp("crawl-record")
    from datetime import date

    records.build_record(data, list(records.session_rows(date(2026, 11, 26), 3, 4)))
    store = Store.open(data, readonly=True)
    daemon = FakeDaemon()
    app = create_app(Config(), data, data / "control.sock", control=daemon.client, store=store,
                     secret_key="crawl", status_fresh_s=0, throttle=LoginThrottle(free_attempts=10**9))
    yield app, daemon
    store.close()


def _client_as(app, who: str):
    client = app.test_client()
    if who in ("thera", "boss"):
        token = csrf_of(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"csrf": token, "name": who, "password": records.PASSWORD})
        assert response.status_code == 302, "the crawl's own login failed"
    return client


def _csrf(client) -> str | None:
    with client.session_transaction() as session:
        return session.get("csrf")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(who=st.sampled_from(["nobody", "thera", "boss", "token"]), method=st.sampled_from(METHODS),
       path=paths(), query=params, form=params, csrf=st.sampled_from(["valid", "forged", "missing"]),
       extra=headers, mood=st.sampled_from(["up", "down", "refusing"]),
       checklist=checklists)
def test_no_route_answers_500_or_shows_a_traceback(crawl_app, who, method, path, query, form, csrf,
                                                   extra, mood, checklist):
    app, daemon = crawl_app
    daemon.status, daemon.down = copy.deepcopy(FakeDaemon().status), mood == "down"
    daemon.refuse = "the rule says no (crawl)" if mood == "refusing" else None
    client = _client_as(app, who)
    head = dict(extra)
    if who == "token":
        head["Authorization"] = f"Bearer {records.TOKEN}"
    body = dict(form)
    if checklist:
        body["checklist"] = checklist
    if csrf == "valid" and _csrf(client):
        body["csrf"] = _csrf(client)
    elif csrf == "forged":
        body["csrf"] = "forged-" + "x" * 40
    else:
        body.pop("csrf", None)
    try:
        response = client.open(path, method=method, query_string=query,
                               data=body if method in ("POST", "PUT", "PATCH") else None, headers=head)
    except UnicodeError:
        assume(False)  # the test client cannot encode it: no request is sent
    text = response.get_data(as_text=True)
    assert response.status_code != 500, (method, path, query, body, head, text[:300])
    assert not any(leak in text for leak in LEAKS), (method, path, text[:300])
    if response.status_code >= 500:
        assert mood == "down" and response.status_code == 503, (method, path, response.status_code)


def test_the_crawl_would_see_a_500(crawl_app, monkeypatch):
    """The crawl's assertion is live: a route that raises answers 500 (without a traceback)."""
    app, daemon = crawl_app
    client = _client_as(app, "thera")
    monkeypatch.setattr(daemon, "status", None)  # the fake daemon answers None: the page's code fails
    response = client.get("/api/sessions?date=2026-11-27")
    assert response.status_code == 200  # no status needed for a named day
    monkeypatch.setattr("appliance.page.view.session_row", lambda *a: 1 / 0)
    broken = client.get("/?date=2026-11-27")
    assert broken.status_code == 500 and "Traceback" not in broken.get_data(as_text=True)
