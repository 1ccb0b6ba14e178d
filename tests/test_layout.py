"""The shape of tests/ itself: helpers live in `tests.support`, fixtures arrive through pytest.

A test that imports a conftest module gets a second copy of it (pytest imports conftests by
itself) and, when it imports a fixture, a name that shadows the fixture pytest passes in.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SUPPORT = TESTS / "support"
FIXTURE_DECORATORS = {"pytest.fixture", "pytest_asyncio.fixture", "fixture"}


def python_files() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every import in `path`; relative ones keep their dots."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.append((node.lineno, base))
            # `from tests.signaling import conftest` names the module as an imported name.
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def conftest_imports(path: Path) -> list[str]:
    """One line per import statement in `path` that reaches a conftest module."""
    lines: dict[int, str] = {}
    for line, module in imported_modules(path):
        if "conftest" in module.lstrip(".").split("."):
            lines.setdefault(line, f"{path.relative_to(TESTS.parent)}:{line} imports {module}")
    return list(lines.values())


def decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def support_fixtures() -> dict[str, set[str]]:
    """Fixture names defined in each `tests.support` module, keyed by dotted module name."""
    fixtures: dict[str, set[str]] = {}
    for path in sorted(SUPPORT.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        fixtures[f"tests.support.{path.stem}"] = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and any(decorator_name(d) in FIXTURE_DECORATORS for d in node.decorator_list)
        }
    return fixtures


def test_no_file_under_tests_imports_a_conftest_module() -> None:
    found = [problem for path in python_files() for problem in conftest_imports(path)]
    assert found == [], "import helpers from tests.support instead:\n" + "\n".join(found)


def test_no_file_imports_a_fixture_from_the_support_package() -> None:
    fixtures = support_fixtures()
    assert any(fixtures.values()), f"no fixtures found in {SUPPORT}"
    found: list[str] = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in fixtures:
                found.extend(
                    f"{path.relative_to(TESTS.parent)}:{node.lineno} imports fixture {alias.name} from {node.module}"
                    for alias in node.names
                    if alias.name in fixtures[node.module]
                )
    assert found == [], "fixtures arrive through pytest_plugins in tests/conftest.py:\n" + "\n".join(found)


def root_plugins() -> set[str]:
    """The `pytest_plugins` list of tests/conftest.py, read without importing it."""
    tree = ast.parse((TESTS / "conftest.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list | tuple), value
            return {str(name) for name in value}
    return set()


def test_every_support_module_with_fixtures_is_a_plugin() -> None:
    # Fixtures in a module that is not listed would be missing from every test.
    plugins = root_plugins()
    missing = sorted(module for module, names in support_fixtures().items() if names and module not in plugins)
    assert missing == [], f"add these to pytest_plugins in tests/conftest.py: {missing}"
