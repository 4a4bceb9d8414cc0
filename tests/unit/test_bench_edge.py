"""The edge bench reads its load generators' reports right (bench/edge.py)."""

from __future__ import annotations

import pytest

from bench import edge

WRK_OUTPUT = """Running 8s test @ http://127.0.0.1:9480
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    41.10ms   12.01ms 120.00ms   70.00%
    Req/Sec   390.00     40.00   480.00     70.00%
  Latency Distribution
     50%   40.50ms
     75%   47.00ms
     90%   55.00ms
     99%    1.02s
  6000 requests in 8.00s, 3.00MB read
  Non-2xx or 3xx responses: 10
Requests/sec:    750.00
Transfer/sec:    384.00KB
"""


def test_a_wrk_report_gives_the_rate_of_good_responses_and_its_percentiles():
    row = edge.parse_wrk("rest", WRK_OUTPUT)
    assert row.rate == pytest.approx(5990 / 8)
    assert (row.p50_ms, row.p99_ms, row.errors) == (pytest.approx(40.5), 1020.0, 10)


def test_a_ghz_report_counts_ok_calls_and_not_the_calls_cut_at_the_end():
    report = {
        "total": 2_000_000_000,
        "count": 4726,
        "latencyDistribution": [
            {"percentage": 50, "latency": 9_000_000},
            {"percentage": 99, "latency": 31_500_000},
        ],
        "statusCodeDistribution": {"OK": 4694, "Unavailable": 32},
        "errorDistribution": {
            "rpc error: code = Unavailable desc = use of closed network connection": 30,
            "rpc error: code = Internal desc = boom": 2,
        },
    }
    row = edge.parse_ghz("bare", report)
    assert row.rate == pytest.approx(2347)
    assert (row.p50_ms, row.p99_ms, row.errors) == (9.0, 31.5, 2)


def test_a_stdev_share_ending_in_50_percent_is_not_taken_for_the_median():
    # `make bench-edge` died on such a report: "68.50%" ends the Req/Sec line.
    report = WRK_OUTPUT.replace("480.00     70.00%", "480.00     68.50%")
    assert edge.parse_wrk("rest", report).p50_ms == pytest.approx(40.5)


@pytest.mark.parametrize(("text", "ms"), [("850us", 0.85), ("12.5ms", 12.5), ("2.00s", 2000.0)])
def test_wrk_durations_are_read_in_their_unit(text, ms):
    assert edge._ms(text) == pytest.approx(ms)
