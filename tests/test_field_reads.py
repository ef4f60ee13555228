"""Every field name that luna2d's code reads from or writes to an object's
data is defined in the kind table (``luna2d/model/kinds.py``).

An AST walk over ``luna2d/`` finds ``<x>.data.get("f")``, ``<x>.data["f"]``,
``<x>.data.pop("f")``, ``<x>.data.setdefault("f")``, ``<x>.by_name["f"]``,
and the same with a loop variable that runs over a literal tuple of names
(``for key in ("gateway", "nameserver_ip"): net.data.get(key)``), literal or
named at module level; each name
must be a field of some kind. A test that fails when it should is below."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from twisted.trial import unittest

import luna2d
from luna2d.model.kinds import KINDS

ROOT = Path(luna2d.__file__).parent
ACCESSORS = frozenset({"get", "pop", "setdefault"})
HOLDERS = frozenset({"data", "by_name"})


def defined_fields() -> set[str]:
    """Every canonical field name of every kind."""
    return {f.name for kind in KINDS.values() for f in kind.fields}


class FieldReads(ast.NodeVisitor):
    """Collects (line, name) of every constant field name used on ``.data``
    or ``.by_name``."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        self.loops: dict[str, tuple[str, ...]] = {}
        self.constants: dict[str, tuple[str, ...]] = {}

    def _names(self, node: ast.expr) -> tuple[str, ...]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return (node.value,)
        if isinstance(node, ast.Name):
            return self.loops.get(node.id, ())
        return ()

    @staticmethod
    def _holder(node: ast.expr) -> bool:
        return isinstance(node, ast.Attribute) and node.attr in HOLDERS

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ACCESSORS
            and self._holder(func.value)
            and node.args
        ):
            self.found.extend((node.lineno, n) for n in self._names(node.args[0]))
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self._holder(node.value):
            self.found.extend((node.lineno, n) for n in self._names(node.slice))
        self.generic_visit(node)

    @staticmethod
    def _literal(node: ast.expr) -> tuple[str, ...] | None:
        if (
            isinstance(node, (ast.Tuple, ast.List, ast.Set))
            and node.elts
            and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
        ):
            return tuple(e.value for e in node.elts)  # type: ignore[attr-defined]
        return None

    def visit_Module(self, node: ast.Module) -> None:
        # Module-level tuples of names (ADDRESS_FIELDS = ("gateway", ...)).
        for item in node.body:
            if (
                isinstance(item, ast.Assign)
                and len(item.targets) == 1
                and isinstance(item.targets[0], ast.Name)
            ):
                names = self._literal(item.value)
                if names is not None:
                    self.constants[item.targets[0].id] = names
        self.generic_visit(node)

    def _literal_or_constant(self, node: ast.expr) -> tuple[str, ...] | None:
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        return self._literal(node)

    def _with_loop(self, target: ast.expr, iterable: ast.expr, body: list[ast.AST]) -> None:
        names = self._literal_or_constant(iterable)
        bound = target.id if isinstance(target, ast.Name) and names is not None else None
        saved = self.loops.get(bound) if bound else None
        if bound and names is not None:
            self.loops[bound] = names
        for item in body:
            self.visit(item)
        if bound:
            if saved is None:
                self.loops.pop(bound, None)
            else:
                self.loops[bound] = saved

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self._with_loop(node.target, node.iter, [*node.body, *node.orelse])

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        bound: list[str] = []
        for gen in node.generators:
            self.visit(gen.iter)
            names = self._literal_or_constant(gen.iter)
            if isinstance(gen.target, ast.Name) and names is not None:
                self.loops[gen.target.id] = names
                bound.append(gen.target.id)
        for gen in node.generators:
            for cond in gen.ifs:
                self.visit(cond)
        if isinstance(node, ast.DictComp):
            self.visit(node.key)
            self.visit(node.value)
        else:
            self.visit(node.elt)
        for name in bound:
            self.loops.pop(name, None)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension


def field_names_used(source: str) -> list[tuple[int, str]]:
    reads = FieldReads()
    reads.visit(ast.parse(source))
    return reads.found


def code_files() -> Iterator[Path]:
    yield from sorted(ROOT.rglob("*.py"))


class FieldReadTests(unittest.TestCase):
    def test_every_field_read_is_defined(self) -> None:
        """No module of luna2d reads or writes a field of an object's data
        that the kind table does not define."""
        known = defined_fields()
        unknown = []
        seen = 0
        for path in code_files():
            for line, name in field_names_used(path.read_text()):
                seen += 1
                if name not in known:
                    unknown.append(f"{path.relative_to(ROOT.parent)}:{line}: {name!r}")
        self.assertEqual(unknown, [])
        self.assertGreater(seen, 50)  # the walk does find the reads

    def test_walk_finds_every_form(self) -> None:
        """The walk sees each form of a read, including names reached
        through a loop over a literal tuple or a module's tuple of names,
        and ignores other variables."""
        source = (
            "obj.data.get('alpha')\n"
            "x = obj.data['beta']\n"
            "obj.data.pop('gamma', None)\n"
            "kind.by_name['delta']\n"
            "for key in ('epsilon', 'zeta'):\n"
            "    net.data.get(key)\n"
            "{k: image.data.get(k) for k in ('eta',)}\n"
            "obj.data.get(f.name)\n"
            "FILES = ('theta', 'iota')\n"
            "[image.data[k] for k in FILES]\n"
            "other.get('not_a_field')\n"
        )
        self.assertEqual(
            sorted(name for _, name in field_names_used(source)),
            ["alpha", "beta", "delta", "epsilon", "eta", "gamma", "iota", "theta", "zeta"],
        )

    def test_unknown_read_fails(self) -> None:
        """A read of a field the table lacks is reported."""
        names = {name for _, name in field_names_used("node.data.get('never_declared')")}
        self.assertEqual(names - defined_fields(), {"never_declared"})
