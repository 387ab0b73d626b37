"""Every benchmark runs end to end at a tiny size, so bench/ cannot rot. No figure is asserted:
benchmarks are measurements, not tests; only that each produced its rows and the report renders."""

from __future__ import annotations

import pytest

from bench.__main__ import run
from bench.options import parse_args
from bench.report import write_report

TINY = [
    *("--failures", "200", "--raw-sample", "100", "--messages", "100", "--captures", "10", "--parked", "50"),
    *("--host-messages", "40", "--latency-seconds", "0.4", "--retry-failures", "60", "--pickup-files", "30"),
]
#: host: the end-to-end row, then p50 and p95 at each of the two offered loads.
EXPECTED_ROWS = {
    "engine": 2,
    "host": 5,
    "jobs": 2,
    "retry-delivered": 1,
    "list": 8,
    "capture": 1,
    "recovery": 1,
    "pickup": 1,
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("benchmark", sorted(EXPECTED_ROWS))
async def test_benchmark_runs_at_a_tiny_size_and_reports(benchmark, tmp_path):
    options = parse_args(["--only", benchmark, *TINY, "--list-repeats", "3", "--out", str(tmp_path / "RESULTS.md")])

    results = await run(options)

    assert len(results) == EXPECTED_ROWS[benchmark]
    assert all(result.value > 0 and result.raw is not None and result.raw > 0 for result in results)
    assert options.out is not None
    write_report(options.out, results, options=options, minutes=0.1)
    report = options.out.read_text()
    assert "| benchmark | case | Rebound | raw Azurite | ratio |" in report
    assert "Azurite: " in report and "CPU: " in report
