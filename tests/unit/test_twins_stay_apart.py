"""The twins stay apart from both sides: the app never imports them (they are not deployed), and they
never lean on the Azure stores they are compared with (the contract suite needs two implementations)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The fake at the Service Bus SDK boundary is a twin of the SDK client, so it imports the SDK's types.
SDK_FAKES = {"service_bus.py"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_nothing_deployed_imports_the_tests():
    deployed = [*sorted((ROOT / "shared").rglob("*.py")), *sorted((ROOT / "blueprints").rglob("*.py"))]
    deployed.append(ROOT / "function_app.py")

    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in imports_of(path) if name.split(".")[0] == "tests")
        for path in deployed
    }

    assert len(deployed) > 40
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_twins_use_neither_the_azure_stores_nor_the_azure_sdk():
    twins = sorted((ROOT / "tests" / "twins").glob("*.py"))

    offenders = {
        path.name: sorted(
            name for name in imports_of(path) if name.startswith(("shared.storage", "azure.")) or name == "azure"
        )
        for path in twins
        if path.name not in SDK_FAKES
    }

    assert {"failures.py", "jobs.py", "queues.py", "recovery.py", "stores.py"} <= {path.name for path in twins}
    assert {name: found for name, found in offenders.items() if found} == {}
