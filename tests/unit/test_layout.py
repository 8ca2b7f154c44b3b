"""The README's layout block lists exactly the packages and modules that exist, and every module
says in its first line what it is for."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "flags", "newchat", "proxy", "rollback", "chatctl")


def _listed() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text()
    marker = text.index("<!-- layout:")
    block = text[
        text.index("```\n", marker) + 4 : text.index("```", text.index("```\n", marker) + 4)
    ]
    listed: dict[str, set[str]] = {}
    package = ""
    for line in block.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            package = line.split()[0].rstrip("/")
            listed[package] = set()
        else:
            listed[package].update(line.split())
    return listed


def _tree() -> dict[str, set[str]]:
    tree: dict[str, set[str]] = {}
    for top in PACKAGES:
        for init in (ROOT / top).rglob("__init__.py"):
            package = init.parent.relative_to(ROOT).as_posix()
            tree[package] = {
                path.stem for path in init.parent.glob("*.py") if path.name != "__init__.py"
            }
    return tree


def test_the_readme_layout_matches_the_tree() -> None:
    assert _listed() == _tree()


def test_every_module_opens_with_a_line_on_its_responsibility() -> None:
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            docstring = ast.get_docstring(ast.parse(path.read_text()))
            assert docstring, f"{path.relative_to(ROOT)} has no module docstring"
            assert re.match(r"\S", docstring), path
