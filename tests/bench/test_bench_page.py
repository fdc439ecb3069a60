"""The page benchmark's short variants: the script runs and its figures come out."""
import pytest

from tests.bench import bench_page


def test_p2_short_run_prints_both_endpoints():
    figures = bench_page.measure_p2(years=0.1, runs=20)
    assert [f.bar for f in figures if "vs 1 day" in f.bar] == [
        "P2 GET / 0.1 years vs 1 day", "P2 GET /api/sessions 0.1 years vs 1 day"]
    assert all(f.measured.startswith("x") for f in figures[:4:2])
    assert [f.bar for f in figures if "after a record change" in f.bar] == [
        "P2 GET / after a record change, p50, 0.1 years", "P2 GET /api/sessions after a record change, p50, 0.1 years"]


@pytest.mark.slow
def test_p3_short_run_has_no_errors():
    figures = bench_page.measure_p3(seconds=3, clients=20, p1_cycles=30)
    assert figures[0].bar == "P3 page errors under load" and figures[0].ok, figures[0].note
