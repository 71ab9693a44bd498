"""devtools is local-only: no domain app imports it, at the top of a module or inside a function."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_APPS = [
    "core",
    "api",
    "customers",
    "integrations",
    "billing",
    "automations",
    "webhooks",
    "support",
    "backoffice",
]


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_no_domain_app_imports_devtools():
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for app in DOMAIN_APPS
        if (ROOT / app).is_dir()
        for path in sorted((ROOT / app).rglob("*.py"))
        for module in sorted(_imported_modules(path))
        if module == "devtools" or module.startswith("devtools.")
    ]
    assert offenders == []
