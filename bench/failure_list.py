"""Failure list, first page (limit 50) p50/p95 at many failures: no filter, a time window, `q`, a group.

One phase: seed the failures (one second apart; bench/seed.py), then time `list_failures`
(what GET /integrations/{id}/failures runs, minus HTTP) `repeats` times per case, after two
warm-up calls. Cases: no filter; a one-hour window in the middle of the failures' time span;
`q` = a word in about 1 % of the reasons (Table storage has no `contains`, so this scans, up
to the 5,000-row budget of one request); `group` = a failure group holding 10 % of them.

Raw baseline: the first page of 50 of the partition, a raw SDK query (`PartitionKey eq`),
timed the same way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from azure.data.tables.aio import TableClient

from bench.harness import RAW_SDK, Result, Stopwatch, azure_stores, percentile, phase
from bench.seed import GROUP_TEMPLATE, RARE_WORD, seed_failures
from shared.failures.models import FailureFilter
from shared.values import utc_now

INTEGRATION = "orders"
LIMIT = 50


async def _timings(call: Callable[[], Awaitable[object]], repeats: int) -> list[float]:
    for _ in range(2):
        await call()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def bench_failure_list(count: int, *, repeats: int) -> list[Result]:
    async with phase(f"failure list at {count:,} failures") as (azurite, services):
        watch = Stopwatch()
        seeded = await seed_failures(services, INTEGRATION, count, end=utc_now(), blob_every=0)
        print(f"    seeded {count:,} failures in {watch.elapsed_s:.0f} s", flush=True)

        table = TableClient.from_connection_string(
            azurite.connection_string, azure_stores(services).names.failures, **RAW_SDK
        )
        try:

            async def raw_first_page() -> None:
                pager = table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": INTEGRATION}, results_per_page=LIMIT
                ).by_page()
                async for page in pager:
                    [entity async for entity in page]
                    return

            raw = await _timings(raw_first_page, repeats)
        finally:
            await table.close()

        window_s = min(3600, count // 4)
        window_start = seeded.first + timedelta(seconds=count // 2 - window_s // 2)
        cases = {
            "no filter": FailureFilter(),
            f"time filter ({window_s // 60} min window in the middle)": FailureFilter.model_validate(
                {"from": window_start, "to": window_start + timedelta(seconds=window_s)}
            ),
            f"q (a word in 1 % of reasons: {RARE_WORD!r})": FailureFilter(q=RARE_WORD),
            "group (10 % of failures)": FailureFilter(group=seeded.groups[GROUP_TEMPLATE]),
        }
        results: list[Result] = []
        raw_what = f"SDK: first page of {LIMIT} of the partition (PartitionKey eq), {repeats} requests"
        for case, selection in cases.items():
            items: list[int] = []

            async def first_page(selection: FailureFilter = selection, items: list[int] = items) -> None:
                page = await services.failures.page(INTEGRATION, selection, limit=LIMIT)
                items.append(len(page.items))

            timings = await _timings(first_page, repeats)
            for q in (50, 95):
                result = Result(
                    benchmark="failure list, first page",
                    case=f"{case}, p{q}",
                    value=percentile(timings, q),
                    unit="ms",
                    raw=percentile(raw, q),
                    raw_what=raw_what,
                    higher_is_better=False,
                    extra={"items on the page": items[-1], "failures": count},
                )
                print(f"    {result.line()}", flush=True)
                results.append(result)
        return results
