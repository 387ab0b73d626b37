"""The benchmark report: a run of some benchmarks joins an existing report as a section of its own."""

from __future__ import annotations

from bench.harness import Result
from bench.options import BENCHMARKS, parse_args
from bench.report import OPTIONS_OF, _command, add_section, render_section

FACTS = {"CPU": "test CPU", "cores": "2"}


def a_result(value: float) -> Result:
    return Result(
        benchmark="host end to end", case="2,000 messages", value=value, unit="msg/s", raw=200.0, raw_what="SDK"
    )


def test_an_added_run_keeps_the_earlier_report_and_replaces_only_its_own_earlier_section():
    # Given a report with the rows of a full run
    report = "# Benchmark results\n\n| engine throughput | success path |\n"
    only = ("host",)

    # When a host run is added, and then added again with new figures
    first = render_section([a_result(100.0)], command="c1", minutes=1.0, facts=FACTS, only=only)
    second = render_section([a_result(150.0)], command="c2", minutes=2.0, facts=FACTS, only=only)
    twice = add_section(add_section(report, first, only), second, only)

    # Then the earlier rows stay, and the host run appears once, with the newer figures and command
    assert "| engine throughput | success path |" in twice
    assert twice.count("## Added run: host") == 1
    assert "150 msg/s" in twice and "100 msg/s" not in twice
    assert "`c2` (2.0 min)" in twice and "c1" not in twice


def test_a_run_of_one_benchmark_names_only_the_options_that_benchmark_reads():
    # Given a run of the host benchmark alone
    options = parse_args(["--only", "host", "--host-messages", "500", "--no-report"])

    # When its command line is written into the report
    command = _command(options)

    # Then it carries the host options and none of the others
    assert command == "python -m bench --only host --host-messages 500 --latency-seconds 60 --latency-rates 50,100"


def test_every_benchmark_declares_the_options_it_reads():
    assert set(OPTIONS_OF) == set(BENCHMARKS)
