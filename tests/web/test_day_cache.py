"""The page keeps a day's rendered pieces until the daemon commits again: never stale,
and only a few days kept."""
from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone

import pytest

from appliance.core.config import Config
from appliance.page.app import create_app
from appliance.page.caches import DayCache
from appliance.record.store import Store
from tests.web import records
from tests.web.conftest import TODAY, FakeDaemon, log_in


@pytest.fixture
def own_record(tmp_path):
    """A record of its own: these tests write to it behind the page's back."""
    records.build_record(tmp_path, records.session_rows(TODAY - timedelta(days=1), 2, 3))
    return tmp_path


def add_session(data, day: date, client_ref: str, *, outcome="completed", ended=True) -> None:
    """A session committed by another connection, as the daemon would."""
    row = list(next(records.session_rows(day, 1, 1, seed=7)))
    row[3] = client_ref
    row[14] = outcome
    if not ended:
        row[2] = None
    conn = sqlite3.connect(data / "pendock.db")
    with conn:
        conn.execute(f"INSERT INTO sessions ({', '.join(records._COLUMNS)}) "
                     f"VALUES ({', '.join('?' * len(records._COLUMNS))})", row)
    conn.close()


@pytest.fixture
def page(own_record):
    daemon = FakeDaemon()
    store = Store.open(own_record, readonly=True)
    app = create_app(Config(), own_record, own_record / "control.sock", control=daemon.client, store=store,
                     secret_key="test-key", status_fresh_s=0)
    client = app.test_client()
    assert log_in(client).status_code == 302
    yield client, daemon
    store.close()


def test_a_session_written_by_the_daemon_shows_on_the_next_request(page, own_record):
    client, _ = page
    paths = ("/", "/api/sessions", "/export.csv")
    before = {path: client.get(path).get_data(as_text=True) for path in paths}
    assert all("C-NEW01" not in text for text in before.values())
    assert client.get("/").get_data(as_text=True) == before["/"]  # served again, unchanged
    add_session(own_record, TODAY, "C-NEW01")
    for path in paths:
        assert "C-NEW01" in client.get(path).get_data(as_text=True), path
    assert len(client.get("/api/sessions").get_json()) == 4


def test_an_open_sessions_bar_grows_with_the_dock_clock(page, own_record):
    client, daemon = page
    add_session(own_record, TODAY, "C-OPEN1", outcome="open", ended=False)  # started 08:00

    def bar_width() -> float:
        html = client.get("/").get_data(as_text=True)
        return float(html.split('class="bar bar-open"')[1].split('width="')[1].split('"')[0])

    daemon.set(now=datetime(TODAY.year, TODAY.month, TODAY.day, 9, tzinfo=timezone.utc))
    early = bar_width()
    daemon.set(now=datetime(TODAY.year, TODAY.month, TODAY.day, 11, tzinfo=timezone.utc))
    assert bar_width() > early


class CountingStore:
    """A stand-in record: counts the day reads; `commit()` is another connection's commit."""

    def __init__(self):
        self.version, self.reads = 1, []

    def data_version(self) -> int:
        return self.version

    def sessions_on(self, day: date) -> list[dict]:
        self.reads.append(day)
        return [{"id": len(self.reads), "outcome": "completed"}]

    def commit(self) -> None:
        self.version += 1


def test_a_day_is_read_once_per_commit():
    store = CountingStore()
    cache = DayCache(lambda: store, 3)
    first = cache.day(TODAY)
    assert cache.day(TODAY) is first and store.reads == [TODAY]
    store.commit()
    assert cache.day(TODAY) is not first and store.reads == [TODAY, TODAY]


def test_the_cache_keeps_only_the_last_days_asked_for():
    store = CountingStore()
    cache = DayCache(lambda: store, 2)
    days = [TODAY - timedelta(days=n) for n in range(5)]
    for day in days:
        cache.day(day)
        assert len(cache) <= 2
    store.reads.clear()
    cache.day(days[-1])  # kept
    cache.day(days[0])  # dropped long ago: read again
    assert store.reads == [days[0]]
    with pytest.raises(ValueError, match="at least one day"):
        DayCache(lambda: store, 0)


def test_the_readers_data_version_moves_when_another_connection_commits(own_record):
    with Store.open(own_record, readonly=True) as reader:
        before = reader.data_version()
        assert reader.data_version() == before
        add_session(own_record, TODAY, "C-NEW02")
        assert reader.data_version() != before
