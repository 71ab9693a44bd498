"""The shape of the house, checked: the floors between the apps (docs/ARCHITECTURE.md, "The floors"), and modules and
functions small enough to read in one sitting. A change that breaks one fails here with the offending import or name."""

import ast
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_APPS = [
    "customers",
    "billing",
    "automations",
    "integrations",
    "support",
    "webhooks",
    "backoffice",
    "marketing",
    "api",
    "core",
]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _sources(folders):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.relative_to(ROOT).as_posix():
                yield path


def test_every_app_imports_only_the_floors_below_it(capsys):
    # import-linter reads every import, those inside functions too, from pyproject.toml's [tool.importlinter].
    exit_code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert exit_code == 0, report


def test_no_module_is_longer_than_a_sitting():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in _sources([*DOMAIN_APPS, "config", "devtools"])
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_in_a_domain_app_is_longer_than_a_screen():
    long = {}
    for path in _sources(DOMAIN_APPS):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}


def test_no_test_mixes_an_override_settings_decorator_with_the_settings_fixture():
    """pytest-django's `settings` fixture undoes its change after the decorator has undone its own, and so puts the
    decorator's values back for every later test of the worker (a frequency cap left on made other tests' last
    emails wait): one or the other per test."""
    mixed = []
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            decorated = any(
                isinstance(d, ast.Call) and getattr(d.func, "id", "") == "override_settings"
                for d in node.decorator_list
            )
            if decorated and any(arg.arg == "settings" for arg in node.args.args):
                mixed.append(f"{path.relative_to(ROOT)}::{node.name}")
    assert mixed == []
