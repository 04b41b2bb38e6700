"""Read the import arrows of this repo's own modules from their source (AST), lazy ones included.

Used by tests/test_import_boundary.py. Nothing is imported: the graph is what the source says, so
an `import torch` inside a function the tests never call is still seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

OWN_PACKAGES = ("tui", "engine")


def module_file(root: Path, name: str) -> Path | None:
    """The source file of module `name` under `root`, or None when it is not a module there."""
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def imports_of(root: Path, name: str, *, lazy: bool) -> list[str]:
    """Every module `name` imports: at module level, or anywhere (functions too) when `lazy`.

    `if TYPE_CHECKING:` blocks are skipped (never run). `from pkg import sub` yields `pkg.sub`
    too when that is a module under `root`; relative imports are resolved.
    """
    path = module_file(root, name)
    if path is None:
        return []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                if lazy:
                    visit(child)
                continue
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                found.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (child.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                found.append(base)
                found.extend(
                    f"{base}.{alias.name}"
                    for alias in child.names
                    if module_file(root, f"{base}.{alias.name}")
                )
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def app_modules(root: Path) -> list[str]:
    """Every module of the app package (tui/), by its source files."""
    return sorted(module_name(root, p) for p in (root / "tui").rglob("*.py"))


def reachable(root: Path, start: Iterable[str]) -> dict[str, str]:
    """Every module the app can reach from `start`, mapped to a module that imports it.

    App (tui) modules count every import, lazy ones included; engine modules count their
    module-level imports (what importing them runs), followed transitively. Third-party modules
    are listed but not followed.
    """
    seen: dict[str, str] = {}
    todo = [(name, "<start>") for name in start]
    while todo:
        name, importer = todo.pop()
        if name in seen:
            continue
        seen[name] = importer
        if name.split(".")[0] not in OWN_PACKAGES:
            continue
        for target in imports_of(root, name, lazy=name.split(".")[0] == "tui"):
            parts = target.split(".")
            # importing a.b.c runs a and a.b first
            todo.extend((".".join(parts[: k + 1]), name) for k in range(len(parts)))
    return seen


def chain(graph: dict[str, str], name: str) -> str:
    """`tui.x -> engine.y -> torch`: how the app reaches `name`."""
    links = [name]
    while graph.get(links[-1], "<start>") != "<start>":
        links.append(graph[links[-1]])
    return " -> ".join(reversed(links))
