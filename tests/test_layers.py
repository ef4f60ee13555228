"""Resources are thin (ARCHITECTURE.md, "Thin resources"): a handler
parses, makes one store call and serializes. So no module under
``luna2d/resources`` imports the store's internals (its in-memory state,
views, the boot store module) or reaches into the store's ``state`` or
``pool``; reads go through named ``Store`` queries. One exception is
written down: ``resources/config.py`` hands the generic object writes of
``luna2d.store.objects`` to ``Store.write`` (the store's generic write
API for every kind)."""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial import unittest

import luna2d.resources

RESOURCES = Path(luna2d.resources.__file__).parent
INTERNALS = {
    "state",
    "views",
    "objects",
    "boot",
    "ipam",
    "bootindex",
    "db",
    "crypto",
    "leases",
    "bootstrap",
}
STORE_ATTRIBUTES = {"state", "pool"}
# module file name -> store internals it may import, and why.
ALLOWED = {"config.py": {"objects"}}  # the generic writes of every kind, run through Store.write


def violations(source: str, filename: str) -> list[str]:
    """What in ``source`` reaches past the store's public methods."""
    found = []
    allowed = ALLOWED.get(filename, set())
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "luna2d.store":
                names = {alias.name for alias in node.names} & INTERNALS - allowed
            elif node.module.startswith("luna2d.store."):
                leaf = node.module.rsplit(".", 1)[1]
                names = {leaf} & INTERNALS - allowed
            else:
                names = set()
            found += [
                f"{filename}:{node.lineno} imports luna2d.store.{name}" for name in sorted(names)
            ]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if (
                    parts[:2] == ["luna2d", "store"]
                    and len(parts) > 2
                    and parts[2] in INTERNALS - allowed
                ):
                    found.append(f"{filename}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in STORE_ATTRIBUTES:
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if name == "store":
                found.append(f"{filename}:{node.lineno} reads store.{node.attr}")
    return found


class ThinResourceTests(unittest.TestCase):
    def test_resources_use_named_store_queries(self) -> None:
        """No resource module imports store internals or touches
        ``store.state`` / ``store.pool``."""
        found = []
        for path in sorted(RESOURCES.glob("*.py")):
            found += violations(path.read_text(), path.name)
        self.assertEqual(found, [])

    def test_the_check_catches_each_form(self) -> None:
        """The check is not blind: each way of reaching in is reported."""
        sample = (
            "from luna2d.store import views, objects\n"
            "from luna2d.store.state import Obj\n"
            "import luna2d.store.boot\n"
            "def f(self, store):\n"
            "    self.store.state.get('node', 'x')\n"
            "    return store.pool\n"
        )
        self.assertEqual(
            sorted(violations(sample, "x.py")),
            [
                "x.py:1 imports luna2d.store.objects",
                "x.py:1 imports luna2d.store.views",
                "x.py:2 imports luna2d.store.state",
                "x.py:3 imports luna2d.store.boot",
                "x.py:5 reads store.state",
                "x.py:6 reads store.pool",
            ],
        )
        self.assertEqual(violations("from luna2d.store import objects\n", "config.py"), [])
