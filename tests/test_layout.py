"""The parts' rules (README, Development), read from the imports themselves.

Every import counts, those inside functions too (they run when the function
does); names used only for type checking (under ``if TYPE_CHECKING:``) do not.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("gateway", "web", "rules")  # pyproject.toml's packages
# What only the tests and benchmarks use: the tests themselves and the dev extras.
TEST_ONLY = ("tests", "bench", "pytest", "pytest_asyncio", "httpx", "playwright", "localstripe", "aiohttp")
ENTRY_POINTS = ("gateway.cli",)  # [project.scripts]; it starts the service, the web app and the rules


def module_files() -> dict[str, Path]:
    modules = {}
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = module_files()


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _import_nodes(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _import_nodes(node)


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every module `module` imports: `from a import b` imports a, and a.b
    when that is a module."""
    found = set()
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in _import_nodes(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: from the module's own package upwards
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        found.add(base)
        found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    # Importing a.b.c runs a and a.b first.
    for name in list(found):
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(found)


def project_imports(module: str) -> set[str]:
    return {name for name in imports_of(module) if name in MODULES and name != module}


def reachable(starts) -> set[str]:
    seen: set[str] = set()
    todo = [start for start in starts if start in MODULES]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(project_imports(module))
    return seen


def within(module: str, *packages: str) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def modules_in(package: str) -> list[str]:
    return [name for name in MODULES if within(name, package)]


@pytest.mark.parametrize("module", modules_in("gateway.core"))
def test_the_core_imports_nothing_above_it(module):
    # The gateway package itself is only a docstring.
    assert {name for name in project_imports(module) if not within(name, "gateway.core") and name != "gateway"} == set()


@pytest.mark.parametrize("module", modules_in("gateway.mail"))
def test_the_mail_stage_reads_with_the_core_only(module):
    outside = {name for name in project_imports(module) if not within(name, "gateway.mail", "gateway.core")}
    assert outside <= {"gateway"}


@pytest.mark.parametrize("module", modules_in("rules"))
def test_rules_import_only_the_mail_stage_reading_side(module):
    outside = {name for name in project_imports(module) if not within(name, "rules", "gateway.mail")}
    assert outside <= {"gateway"}


def test_the_web_app_never_reaches_admission_inbound_or_handlers():
    stages = ("gateway.admission", "gateway.inbound", "gateway.handlers")
    assert {name for name in reachable(modules_in("web")) if within(name, *stages)} == set()


def test_everything_shipped_is_used_by_the_product():
    # The migrations are imported by Tortoise's loader, by the package name
    # gateway/core/schema.py gives it, not by an import statement.
    from gateway.core import schema
    loaded_by_name = set(modules_in(schema.MIGRATIONS))
    assert loaded_by_name and set(MODULES) - reachable(ENTRY_POINTS) - loaded_by_name == set()


@pytest.mark.parametrize("module", list(MODULES))
def test_nothing_shipped_imports_what_only_tests_use(module):
    assert {name for name in imports_of(module) if within(name, *TEST_ONLY)} == set()


def test_the_rules_above_are_checked_against_something():
    # A typo in a package name would make the rules above pass vacuously.
    assert modules_in("gateway.core") and modules_in("gateway.mail") and modules_in("rules") and modules_in("web")
    assert "gateway.service" in reachable(ENTRY_POINTS) and "web.app" in reachable(ENTRY_POINTS)
