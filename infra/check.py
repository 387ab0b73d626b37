"""`make infra-check`: every Bicep file parses (pycep), then checkov scans infra/ with no failed check.

Usage: python infra/check.py <path to the checkov executable>

checkov runs from its own venv (infra/requirements-checkov.txt) and parses Bicep with its own,
older pycep; a file it cannot parse would silently go unscanned, so parsing errors fail here too.
Skips are `// checkov:skip=CKV_...: reason` comments inside the resource they apply to.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pycep import BicepParser

INFRA = Path(__file__).resolve().parent


def parse_all() -> int:
    parser = BicepParser()
    files = sorted(INFRA.rglob("*.bicep"))
    failed = 0
    for path in files:
        try:
            parser.parse(file_path=path)
        except Exception as exc:  # pycep raises lark's errors; report them all, then fail
            failed += 1
            print(f"pycep: {path.relative_to(INFRA.parent)}: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"pycep: {len(files) - failed}/{len(files)} Bicep files parse")
    return failed


def run_checkov(checkov: str) -> int:
    with tempfile.TemporaryDirectory() as out:
        command = [
            checkov,
            "--directory",
            str(INFRA),
            "--framework",
            "bicep",
            "--compact",
            "--quiet",
            "--skip-download",  # no Prisma Cloud calls: offline, and the same result every run
            "--output",
            "cli",
            "--output",
            "json",
            "--output-file-path",
            f"console,{out}/results.json",
        ]
        status = subprocess.run(command, check=False).returncode
        report = json.loads((Path(out) / "results.json").read_text())
    summary = report["summary"] if isinstance(report, dict) else report[0]["summary"]
    print(
        f"checkov {summary['checkov_version']}: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped (reasons in the templates), {summary['resource_count']} resources"
    )
    if summary["parsing_errors"]:
        print(f"checkov could not parse {summary['parsing_errors']} file(s): they were not scanned", file=sys.stderr)
        return 1
    if summary["resource_count"] == 0:
        print("checkov scanned no resource", file=sys.stderr)
        return 1
    return status or int(summary["failed"] > 0)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    started = time.monotonic()
    status = 1 if parse_all() else run_checkov(argv[1])
    print(f"infra-check: {'ok' if status == 0 else 'FAILED'} in {time.monotonic() - started:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
