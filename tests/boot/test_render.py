"""The one Jinja2 environment (luna2d.render): the spec's template table, strict
undefined variables, no HTML escaping, the filters that keep values on one
iPXE line or one shell word, here-document delimiters, and the templates
shipped as package data: a wheel built from the source tree holds them, and
luna2d installed from it renders them."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import jinja2
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from luna2d import render
from tests.support import ReactorCase

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.name for p in (REPO / "templates").glob("*.j2"))


class TableTests(unittest.TestCase):
    def test_spec_table(self) -> None:
        """The spec's four rows: known, bootmenu off, netboot on -> short;
        known, bootmenu on, netboot on -> normal; known, netboot off -> disk
        whatever bootmenu is; unknown -> normal whatever the flags."""
        self.assertEqual(render.boot_entry(True, bootmenu=False, netboot=True), render.SHORT)
        self.assertEqual(render.boot_entry(True, bootmenu=True, netboot=True), render.NORMAL)
        self.assertEqual(render.boot_entry(True, bootmenu=True, netboot=False), render.DISK)
        self.assertEqual(render.boot_entry(True, bootmenu=False, netboot=False), render.DISK)
        for bootmenu in (True, False):
            for netboot in (True, False):
                self.assertEqual(render.boot_entry(False, bootmenu, netboot), render.NORMAL)
        self.assertEqual(
            render.BOOT_PATHS, {"normal": "/boot", "short": "/boot/short", "disk": "/boot/disk"}
        )


class EnvironmentTests(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="luna2d-templates-"))
        self.addCleanup(shutil.rmtree, str(self.folder), True)
        (self.folder / "t.j2").write_text(
            "{{ value }}|{{ value|ipxe }}|{{ value|shquote }}|{{ value|urlpath }}\n"
        )
        (self.folder / "missing.j2").write_text("a {{ nothing }} b\n")
        (self.folder / "blocks.j2").write_text(
            "{% for x in items %}\n  {% if x %}\n{{ x }}\n  {% endif %}\n{% endfor %}\n"
        )
        self.renderer = render.Renderer(self.folder)

    def test_strict_undefined(self) -> None:
        """A variable the caller did not give is an error, never a blank."""
        with self.assertRaises(jinja2.UndefinedError):
            self.renderer.render("missing.j2")

    def test_no_escaping_and_filters(self) -> None:
        """Values render as given (no HTML escaping); ``ipxe`` folds
        whitespace and newlines into single spaces, ``shquote`` makes one
        shell word, ``urlpath`` one URL segment."""
        out = self.renderer.render("t.j2", value="<a & 'b'>\n c/d")
        raw, ipxe, sh, url = out.rstrip("\n").split("|")
        self.assertEqual(raw, "<a & 'b'>\n c/d")
        self.assertEqual(ipxe, "<a & 'b'> c/d")
        self.assertEqual(sh, "'<a & '\"'\"'b'\"'\"'>\n c/d'")
        self.assertEqual(url, "%3Ca%20%26%20%27b%27%3E%0A%20c%2Fd")

    def test_blocks_leave_no_blank_lines(self) -> None:
        """Block tags take their own line and indentation with them."""
        self.assertEqual(self.renderer.render("blocks.j2", items=["a", "", "b"]), "a\nb\n")

    def test_ipmitool_word(self) -> None:
        """One word of an ipmitool command file: in the quote kind the value
        lacks; "" when it holds both kinds or a line break. (tests.ipmi's
        simulator tests feed such words to the real ipmitool.)"""
        self.assertEqual(render.ipmitool_word("pass word$\\"), "'pass word$\\'")
        self.assertEqual(render.ipmitool_word("it's"), '"it\'s"')
        self.assertEqual(render.ipmitool_word('say "x"'), "'say \"x\"'")
        for value in ("a'b\"c", "line\nbreak", "cr\rx", "nul\x00"):
            self.assertEqual(render.ipmitool_word(value), "", repr(value))

    def test_heredoc_end(self) -> None:
        """The delimiter depends on the text and never is one of its lines,
        even for text holding the label and common delimiters."""
        text = "EOF\nLUNA2D_END\nEND\n"
        end = render.heredoc_end(text)
        self.assertTrue(end.startswith("LUNA2D_END_"))
        self.assertNotIn(end, text.splitlines())
        self.assertNotEqual(end, render.heredoc_end(text + "x"))
        self.assertEqual(end, render.heredoc_end(text))

    def test_shipped_templates(self) -> None:
        """The daemon's templates are the repository's templates/ folder
        (through luna2d/templates) and all of them compile."""
        self.assertEqual(render.template_dir().resolve(), (REPO / "templates").resolve())
        names = render.Renderer().reload()
        self.assertEqual(names, SHIPPED)
        for name in (
            "boot.ipxe.j2",
            "short.ipxe.j2",
            "disk.ipxe.j2",
            "discovery.ipxe.j2",
            "node.ipxe.j2",
            "noboot.ipxe.j2",
            "install.sh.j2",
        ):
            self.assertIn(name, names)


class PackageTests(ReactorCase):
    async def test_wheel_ships_templates(self) -> None:
        """A wheel built from a copy of the source tree holds every template
        as luna2d/templates/<name>, and luna2d installed from that wheel
        (not the source tree) finds and renders them."""
        work = Path(tempfile.mkdtemp(prefix="luna2d-wheel-"))
        self.addCleanup(shutil.rmtree, str(work), True)
        source = work / "src"
        source.mkdir()
        for name in ("setup.cfg", "pyproject.toml", "README.md"):
            shutil.copy(REPO / name, source / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dropin.cache")
        for folder in ("luna2d", "templates", "twisted"):
            shutil.copytree(REPO / folder, source / folder, symlinks=True, ignore=ignore)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            pip[1:]
            + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(source)],
            env=dict(os.environ),
            path=str(source),
        )
        self.assertEqual(code, 0, err.decode(errors="replace"))
        wheels = list((work / "dist").glob("luna2d-*.whl"))
        self.assertEqual(len(wheels), 1)
        with zipfile.ZipFile(wheels[0]) as wheel:
            shipped = sorted(
                n.split("/")[-1] for n in wheel.namelist() if n.startswith("luna2d/templates/")
            )
        self.assertEqual(shipped, SHIPPED)

        target = work / "site"
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            pip[1:] + ["install", "--no-deps", "--target", str(target), str(wheels[0])],
            env=dict(os.environ),
            path=str(work),
        )
        self.assertEqual(code, 0, err.decode(errors="replace"))
        probe = (
            "import luna2d.render as r; print(r.template_dir()); "
            "print(r.Renderer().render('disk.ipxe.j2', controller='c', who='node x'), end='')"
        )
        env = {**os.environ, "PYTHONPATH": str(target)}
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-c", probe], env=env, path=str(work)
        )
        self.assertEqual(code, 0, err.decode(errors="replace"))
        lines = out.decode().splitlines()
        self.assertEqual(Path(lines[0]), target / "luna2d" / "templates")
        self.assertFalse((target / "luna2d" / "templates").is_symlink())
        self.assertEqual(lines[1], "#!ipxe")
        self.assertIn("echo luna2d: node x boots from its local disk", lines)
