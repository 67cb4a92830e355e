"""The console apps form a one-way stack and the daemon stands alone: `.importlinter`
declares it, `lint-imports` checks it, and these tests make the suite (so CI) refuse a
cycle, an app left out of the stack, or an import hidden in a function to dodge one."""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONSOLE = ROOT / "console"


def _layered_apps() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    layers = config["importlinter:contract:console-layers"]["layers"]
    return {name.strip() for line in layers.splitlines() for name in line.split("|") if name}


def test_lint_imports_keeps_every_contract() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_console_app_has_a_place_in_the_layers() -> None:
    apps = {f"console.{p.parent.name}" for p in CONSOLE.glob("*/apps.py")}
    assert apps == _layered_apps()


def _imports_inside_functions(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    found.append((inner.lineno, inner.module))
                elif isinstance(inner, ast.Import):
                    found.extend((inner.lineno, alias.name) for alias in inner.names)
    return found


def test_no_app_imports_another_app_inside_a_function() -> None:
    """import-linter sees such imports too; this names the dodge itself, which only ever
    hides a cycle (an app's own modules are its own business)."""
    dodges = []
    for app_dir in sorted(p.parent for p in CONSOLE.glob("*/apps.py")):
        own = f"console.{app_dir.name}"
        for path in app_dir.rglob("*.py"):
            for line, module in _imports_inside_functions(path):
                if module.startswith("console.") and not module.startswith(own):
                    dodges.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert dodges == []
