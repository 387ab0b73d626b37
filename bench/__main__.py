"""`python -m bench`: run the benchmarks, each phase on a fresh Azurite, and write bench/RESULTS.md.

Examples:
  python -m bench                                   # everything at the documented sizes (~46 min on 2 cores)
  python -m bench --job-failures 10000              # the same with smaller jobs (~12 min on 2 cores)
  python -m bench --only jobs --failures 20000      # quick iteration on one benchmark
  python -m bench --only jobs --actions delete --failures 5000 --profile bench/profiles
"""

from __future__ import annotations

import asyncio
import time

from bench.harness import Result
from bench.options import Options, parse_args


async def run(options: Options) -> list[Result]:
    results: list[Result] = []
    if "engine" in options.only:
        from bench.engine_throughput import bench_engine

        results += await bench_engine(options.messages)
    if "host" in options.only:
        from bench.host_e2e import bench_host

        results += await bench_host(
            options.host_messages, options.latency_seconds, options.latency_rates, log_dir=options.devhost_logs
        )
    if "jobs" in options.only:
        from bench.jobs import bench_job

        for action in options.actions:
            profile = None if options.profile is None else options.profile / f"{action.value}-job.txt"
            results.append(
                await bench_job(action, options.job_failures, raw_sample=options.raw_sample, profile=profile)
            )
    if "retry-delivered" in options.only:
        from bench.retry_until_delivered import bench_retry_until_delivered

        results.append(
            await bench_retry_until_delivered(
                options.retry_failures,
                job_rate=options.job_rate,
                budget_min=options.retry_budget_min,
                log_dir=options.devhost_logs,
            )
        )
    if "list" in options.only:
        from bench.failure_list import bench_failure_list

        results += await bench_failure_list(options.failures, repeats=options.list_repeats)
    if "capture" in options.only:
        from bench.capture import bench_capture

        results += await bench_capture(options.captures)
    if "recovery" in options.only:
        from bench.recovery import bench_recovery

        results += await bench_recovery(options.parked)
    if "pickup" in options.only:
        from bench.pickup import bench_pickup

        results += await bench_pickup(options.pickup_files)
    return results


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    started = time.monotonic()
    results = asyncio.run(run(options))
    minutes = (time.monotonic() - started) / 60
    print(f"\n=== {len(results)} results in {minutes:.1f} min")
    for result in results:
        print(result.line())
    if options.out is not None:
        from bench.report import write_report

        write_report(options.out, results, options=options, minutes=minutes)
        print(f"report written to {options.out}")


if __name__ == "__main__":
    main()
