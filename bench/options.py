"""What `python -m bench` is asked to run: the command line parsed into `Options`, which the report repeats."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from shared.jobs.models import JobAction

DESCRIPTION = "`python -m bench`: run the benchmarks, each phase on a fresh Azurite, and write bench/RESULTS.md."
BENCHMARKS = ("engine", "host", "jobs", "retry-delivered", "list", "capture", "recovery", "pickup")
DEFAULT_OUT = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class Options:
    only: tuple[str, ...]
    failures: int
    job_failures: int
    messages: int
    host_messages: int
    latency_seconds: float
    latency_rates: tuple[int, ...]
    retry_failures: int
    job_rate: float
    retry_budget_min: float
    captures: int
    parked: int
    pickup_files: int
    raw_sample: int
    list_repeats: int
    actions: tuple[JobAction, ...]
    profile: Path | None
    out: Path | None
    #: Add this run to `out` as a section of its own instead of rewriting the whole report.
    add_to: bool = False
    #: Keep devhost's log of each phase through the host here.
    devhost_logs: Path | None = None


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {BENCHMARKS}")
    parser.add_argument("--failures", type=int, default=100_000, help="failures seeded for jobs and list")
    parser.add_argument("--job-failures", type=int, default=None, help="failures for the jobs (default: --failures)")
    parser.add_argument("--messages", type=int, default=2_000, help="messages per engine throughput run")
    parser.add_argument(
        "--host-messages", type=int, default=None, help="messages through the host end to end (default: --messages)"
    )
    parser.add_argument(
        "--latency-seconds", type=float, default=60.0, help="seconds of paced load per latency rate (host)"
    )
    parser.add_argument("--latency-rates", default="50,100", help="offered loads for the latency runs, msg/s (host)")
    parser.add_argument(
        "--retry-failures", type=int, default=100_000, help="failures the retry-until-delivered job resends"
    )
    parser.add_argument(
        "--job-rate", type=float, default=10_000, help="JOB_RATE_LIMIT_PER_S for retry-delivered (10,000: no cap)"
    )
    parser.add_argument(
        "--retry-budget-min", type=float, default=60.0, help="retry-delivered stops after this long and reports so"
    )
    parser.add_argument("--captures", type=int, default=300, help="failed messages for the capture cost")
    parser.add_argument("--parked", type=int, default=2_000, help="messages parked for the recovery sweep")
    parser.add_argument("--pickup-files", type=int, default=2_000, help="files a blob pickup source takes")
    parser.add_argument(
        "--raw-sample", type=int, default=10_000, help="items in the raw baseline of each job (at most --failures)"
    )
    parser.add_argument("--list-repeats", type=int, default=40, help="first-page requests per failure-list case")
    parser.add_argument("--actions", default="retry,delete", help="job actions to run: retry, delete")
    parser.add_argument(
        "--devhost-logs", type=Path, default=None, help="keep devhost's log of each host phase in this directory"
    )
    parser.add_argument("--profile", type=Path, default=None, help="write pyinstrument profiles of the jobs here")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the report (default bench/RESULTS.md)")
    parser.add_argument("--no-report", action="store_true", help="print the results, write no report")
    parser.add_argument(
        "--add-to",
        action="store_true",
        help="add this run to the report as a section of its own (replacing an earlier one of the same --only)",
    )
    args = parser.parse_args(argv)
    only = tuple(name.strip() for name in args.only.split(",") if name.strip())
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    return Options(
        only=only,
        failures=args.failures,
        job_failures=args.job_failures or args.failures,
        messages=args.messages,
        host_messages=args.host_messages or args.messages,
        latency_seconds=args.latency_seconds,
        latency_rates=tuple(int(r) for r in args.latency_rates.split(",") if r.strip()),
        retry_failures=args.retry_failures,
        job_rate=args.job_rate,
        retry_budget_min=args.retry_budget_min,
        captures=args.captures,
        parked=args.parked,
        pickup_files=args.pickup_files,
        raw_sample=min(args.raw_sample, args.job_failures or args.failures),
        list_repeats=args.list_repeats,
        actions=tuple(JobAction(a.strip()) for a in args.actions.split(",") if a.strip()),
        profile=args.profile,
        out=None if args.no_report else args.out,
        add_to=args.add_to,
        devhost_logs=args.devhost_logs,
    )
