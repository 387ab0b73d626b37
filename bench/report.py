"""bench/RESULTS.md: the results table with the machine it ran on. Generated; do not edit by hand."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

from bench.harness import Result
from bench.options import Options
from devtools.azurite import PROJECT_DIR

#: The options each benchmark reads (the report's command line names only those of the run).
OPTIONS_OF: dict[str, tuple[str, ...]] = {
    "engine": ("--messages",),
    "host": ("--host-messages", "--latency-seconds", "--latency-rates"),
    "jobs": ("--failures", "--job-failures", "--raw-sample", "--actions"),
    "retry-delivered": ("--retry-failures", "--job-rate", "--retry-budget-min"),
    "list": ("--failures", "--list-repeats"),
    "capture": ("--captures",),
    "recovery": ("--parked",),
    "pickup": ("--pickup-files",),
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))} (kernel {platform.release()})"
    except OSError:
        pass
    return platform.platform()


def _azurite_version() -> str:
    try:
        package = json.loads((PROJECT_DIR / "node_modules" / "azurite" / "package.json").read_text())
        return str(package["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def _git_revision() -> str:
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_DIR, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{revision} (with uncommitted changes)" if dirty else revision


def machine_facts() -> dict[str, str]:
    sdks = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("azure-storage-queue", "azure-data-tables", "azure-storage-blob", "azure-core")
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": _os_name(),
        "Python": platform.python_version(),
        "Azurite": f"{_azurite_version()} (in memory, one fresh process per phase)",
        "Azure SDKs": sdks,
        "git": _git_revision(),
        "load average at the end (1, 5, 15 min)": load,
    }


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def _table(results: list[Result]) -> list[str]:
    lines = [
        "| benchmark | case | Rebound | raw Azurite | ratio | details |",
        "|---|---|---:|---:|---:|---|",
    ]
    for result in results:
        raw = "n/a" if result.raw is None else f"{_number(result.raw)} {result.unit}"
        ratio = "n/a" if result.ratio is None else f"{result.ratio:.2f}"
        details = "; ".join(f"{key} {value:,}" if not isinstance(value, str) else f"{key} {value}"
                            for key, value in result.extra.items())  # fmt: skip
        value = f"{_number(result.value)} {result.unit}"
        lines.append(f"| {result.benchmark} | {result.case} | {value} | {raw} | {ratio} | {details} |")
    return lines


def _explanations(results: list[Result], facts: dict[str, str], heading: str) -> list[str]:
    """What the raw baselines do, the notes and the machine, under `heading`-level headings."""
    lines = ["", f"{heading} What the raw baselines do", ""]
    seen: set[tuple[str, str]] = set()
    for result in results:
        key = (result.benchmark, result.raw_what)
        if key not in seen:
            seen.add(key)
            lines.append(f"- **{result.benchmark}**: {result.raw_what}")
    notes = [(result, note) for result in results for note in result.notes]
    if notes:
        lines += ["", f"{heading} Notes", ""]
        lines += [f"- **{result.benchmark}, {result.case}**: {note}" for result, note in notes]
    lines += ["", f"{heading} Machine", ""]
    lines += [f"- {name}: {value}" for name, value in facts.items()]
    return lines


def render(results: list[Result], *, command: str, minutes: float, facts: dict[str, str]) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m bench` (`make bench`); do not edit by hand. Every figure stands beside the",
        "same storage operations done raw with the Azure SDK in the same run, on a fresh Azurite per phase,",
        "because raw Azurite rates vary 2x between runs (DESIGN.md section 10). Ratio = Rebound / raw: for",
        "rates (msg/s, items/s) below 1 is slower than raw; for times (ms) above 1 is slower than raw.",
        "",
        f"Command: `{command}` ({minutes:.1f} min)",
        "",
        *_table(results),
        *_explanations(results, facts, "##"),
        "",
    ]
    return "\n".join(lines)


def _section_marks(only: tuple[str, ...]) -> tuple[str, str]:
    name = ",".join(only)
    return f"<!-- added run: {name} -->", f"<!-- end of added run: {name} -->"


def render_section(
    results: list[Result], *, command: str, minutes: float, facts: dict[str, str], only: tuple[str, ...]
) -> str:
    """A run of some benchmarks as a section of its own, to add to a report (`--add-to`)."""
    begin, end = _section_marks(only)
    lines = [
        begin,
        f"## Added run: {', '.join(only)}",
        "",
        f"Command: `{command}` ({minutes:.1f} min). A run of its own, at another time and load than the rest of",
        "this file: compare ratios within a section, not across sections.",
        "",
        *_table(results),
        *_explanations(results, facts, "###"),
        end,
    ]
    return "\n".join(lines)


def add_section(text: str, section: str, only: tuple[str, ...]) -> str:
    """`text` with `section` in place of an earlier added run of the same benchmarks, or appended."""
    begin, end = _section_marks(only)
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        return head + section + tail
    return text.rstrip("\n") + "\n\n" + section + "\n"


def _command(options: Options) -> str:
    """The command line of the run, with the options of the benchmarks it ran."""
    values = {
        "--failures": options.failures,
        "--job-failures": options.job_failures,
        "--messages": options.messages,
        "--host-messages": options.host_messages,
        "--latency-seconds": f"{options.latency_seconds:g}",
        "--latency-rates": ",".join(str(r) for r in options.latency_rates),
        "--retry-failures": options.retry_failures,
        "--job-rate": f"{options.job_rate:g}",
        "--retry-budget-min": f"{options.retry_budget_min:g}",
        "--captures": options.captures,
        "--parked": options.parked,
        "--pickup-files": options.pickup_files,
        "--raw-sample": options.raw_sample,
        "--list-repeats": options.list_repeats,
        "--actions": ",".join(a.value for a in options.actions),
    }
    used = [name for benchmark in options.only for name in OPTIONS_OF[benchmark]]
    parts = [f"--only {','.join(options.only)}"] + [f"{name} {values[name]}" for name in values if name in used]
    return "python -m bench " + " ".join(parts)


def write_report(path: Path, results: list[Result], *, options: Options, minutes: float) -> None:
    """The whole report, or with `options.add_to` this run's section added to an existing one."""
    command = _command(options)
    if options.add_to:
        section = render_section(results, command=command, minutes=minutes, facts=machine_facts(), only=options.only)
        existing = path.read_text() if path.exists() else "# Benchmark results\n"
        path.write_text(add_section(existing, section, options.only))
        return
    path.write_text(render(results, command=command, minutes=minutes, facts=machine_facts()))
