"""The house keeps its shape: no import circles among our packages, and each layer imports only downwards.

Imports are read with `ast`, not by importing, so the check is fast and sees every import:
TYPE_CHECKING blocks and imports inside functions too (a circle hidden behind TYPE_CHECKING
is still a circle for a reader). The cycle search is the standard library's (graphlib).
"""

from __future__ import annotations

import ast
import functools
import graphlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "blueprints", "devhost", "devtools", "bench")
TOP_LEVEL_MODULES = ("function_app",)

#: What the domain core must never reach: the Functions SDK, the transport, the local host and its tooling.
SHARED_MUST_NOT_IMPORT = ("azure.functions", "blueprints", "devhost", "devtools")
#: The host must run without dev tooling: devtools depends on devhost, never the other way round.
DEVHOST_MUST_NOT_IMPORT = ("devtools",)

#: The Table dialect (keys, ETags, OData): none of it may appear in shared/ outside the storage line.
TABLE_DIALECT = re.compile(r"RowKey|PartitionKey|_etag|query_entities| eq '")
STORAGE_LINE = "shared.storage"
#: What may import the storage package besides itself: the composition root, and the delivery adapters and
#: pickup readers, the edges to receivers' and upstreams' own systems (their Storage queues and blobs go
#: through the same gateways, and their Service Bus clients are built where every Azure client is).
MAY_IMPORT_STORAGE = ("shared.services", "shared.delivery.adapters", "shared.pickup.readers")
#: Where Azure SDK modules may be imported: the storage line, the adapters and readers, and the telemetry exporter.
MAY_IMPORT_AZURE_SDK = (
    "shared.storage",
    "shared.delivery.adapters",
    "shared.pickup.readers",
    "shared.operability.telemetry",
)


def modules_under(root: Path, packages: Iterable[str], top_level: Iterable[str] = ()) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages (a package is its __init__)."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    for name in top_level:
        modules[name] = root / f"{name}.py"
    return modules


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name the file imports, made absolute: `from .b import c` in package a gives a.b.c."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # `from a.b import c` reaches module a.b.c if there is one, else a.b (see _owner).
            base = _absolute(node, package)
            names.update(base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names)
    return names


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def imports_of(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    return {module: imported_names(module, path) for module, path in modules.items()}


def import_graph(imports: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Module -> the first-party modules it imports (the most specific module each imported name lies in)."""
    graph: dict[str, set[str]] = {}
    for module, names in imports.items():
        targets = {_owner(name, imports) for name in names}
        graph[module] = {target for target in targets if target is not None and target != module}
    return graph


def _owner(name: str, modules: Mapping[str, object]) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def find_circle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None when the graph has none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        circle: list[str] = error.args[1]
        return circle
    return None


def reaching(names: Iterable[str], forbidden: Iterable[str]) -> list[str]:
    return sorted(name for name in names for prefix in forbidden if name == prefix or name.startswith(prefix + "."))


@functools.cache
def project_imports() -> dict[str, set[str]]:
    return imports_of(modules_under(ROOT, PACKAGES, TOP_LEVEL_MODULES))


@functools.cache
def project_graph() -> dict[str, set[str]]:
    return import_graph(project_imports())


def test_the_graph_covers_every_package_and_sees_their_imports():
    # Guards the other tests against passing on an empty or unread graph.
    graph = project_graph()

    assert {module.partition(".")[0] for module in graph} == {*PACKAGES, *TOP_LEVEL_MODULES}
    assert "devhost.functions" in graph["devhost.host"]
    assert "devhost.host" in graph["devtools.process"]
    assert "shared.storage.azure" in graph["shared.services"]
    assert "shared.failures.ports" in graph["shared.failures.queries"]


def test_first_party_packages_import_each_other_without_a_circle():
    circle = find_circle(project_graph())

    assert circle is None, "import circle: " + " -> ".join(circle or [])


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [("shared", SHARED_MUST_NOT_IMPORT), ("devhost", DEVHOST_MUST_NOT_IMPORT)],
    ids=["shared never imports functions, transport, host or tooling", "devhost never imports devtools"],
)
def test_a_layer_never_imports_what_stands_above_it(layer, forbidden):
    offending = {
        module: reaching(names, forbidden)
        for module, names in project_imports().items()
        if module == layer or module.startswith(layer + ".")
    }

    assert {module: names for module, names in offending.items() if names} == {}


def test_a_circle_hidden_behind_type_checking_and_relative_imports_is_found(tmp_path):
    # Given a package whose two modules import each other, one of them only for type checking
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\nclass B: ...\n"
    )

    # When the graph of that package is searched
    circle = find_circle(import_graph(imports_of(modules_under(tmp_path, ["pkg"]))))

    # Then the circle is reported
    assert circle is not None and set(circle) == {"pkg.a", "pkg.b"}


def test_a_forbidden_import_spelled_from_its_parent_package_is_caught(tmp_path):
    (tmp_path / "core.py").write_text("def f():\n    from azure import functions\n")

    names = imported_names("core", tmp_path / "core.py")

    assert reaching(names, SHARED_MUST_NOT_IMPORT) == ["azure.functions"]


def _within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def test_the_table_dialect_stays_below_the_storage_line():
    # Keys, ETags and OData clauses are the storage package's business; the domain sees ids, versions and cursors.
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for module, path in modules_under(ROOT, ["shared"]).items()
        if not _within(module, [STORAGE_LINE])
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if TABLE_DIALECT.search(line)
    ]

    assert found == []


def test_the_domain_reaches_storage_only_through_its_ports():
    imports = project_imports()
    offending = {
        module: reaching(names, [STORAGE_LINE])
        for module, names in imports.items()
        if _within(module, ["shared"]) and not _within(module, [STORAGE_LINE, *MAY_IMPORT_STORAGE])
    }

    assert {module: names for module, names in offending.items() if names} == {}
    # and the check sees the imports it allows, so it cannot pass on a graph that lost them
    assert reaching(imports["shared.services"], [STORAGE_LINE])


def test_azure_sdk_imports_stay_at_the_edges():
    offending = {
        module: reaching(names, ["azure"])
        for module, names in project_imports().items()
        if _within(module, ["shared"]) and not _within(module, MAY_IMPORT_AZURE_SDK)
    }

    assert {module: names for module, names in offending.items() if names} == {}
