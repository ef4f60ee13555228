"""``GET /service/<name>/reload`` through the whole HTTP stack (StubTreq): who
may reload, luna2's reload re-reading the templates, reload hooks of the
embedded services, and services that are disabled or not running."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.internet import defer
from twisted.trial import unittest

from luna2d import render
from luna2d.resources.service import ServiceError, template_reloader
from luna2d.store import objects
from tests.boot.support import BootAPI
from tests.support import result_of


class ReloadTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self, enabled={"dhcp": True, "dns": False})

    def test_luna2_reload(self) -> None:
        """An admin's luna2 reload answers 200 with how many templates were
        read again; every shipped template compiles."""
        code, body = self.api.get("/service/luna2/reload")
        shipped = sorted(p.name for p in render.template_dir().glob("*.j2"))
        self.assertEqual(code, 200)
        self.assertEqual(body["service"], {"luna2": f"OK, reloaded {len(shipped)} templates"})
        self.assertIn("install.sh.j2", shipped)

    def test_who_may_reload(self) -> None:
        """No token 401, readonly and node tokens 403."""
        result_of(self.api.store.write(objects.upsert, "user", "viewer", {"role": "readonly"}))
        self.assertEqual(self.api.get("/service/luna2/reload", token=None)[0], 401)
        for token in (self.api.token("readonly", "viewer"), self.api.token("node", node="node001")):
            self.assertEqual(self.api.get("/service/luna2/reload", token=token)[0], 403)

    def test_not_enabled_or_not_running(self) -> None:
        """dns disabled in the ini: 503 saying so; dhcp enabled with nothing
        running: 503; an unknown service: 404."""
        code, body = self.api.get("/service/dns/reload")
        self.assertEqual(code, 503)
        self.assertIn("[DNS] ENABLED = no", body["message"])
        code, body = self.api.get("/service/dhcp/reload")
        self.assertEqual(code, 503)
        self.assertIn("not running", body["message"])
        self.assertEqual(self.api.get("/service/ftp/reload")[0], 404)

    def test_reload_hooks(self) -> None:
        """A registered reload hook runs (a Deferred one too) and its words
        are the answer; a running service without a hook has nothing to reload."""
        calls: list = []
        self.api.services.register(
            "dhcp",
            lambda: (True, "OK"),
            lambda: calls.append("dhcp") or defer.succeed("OK, rebound eth1"),
        )
        code, body = self.api.get("/service/dhcp/reload")
        self.assertEqual((code, body["service"]), (200, {"dhcp": "OK, rebound eth1"}))
        self.assertEqual(calls, ["dhcp"])
        self.api.services.register("tftp", lambda: (True, "OK"))
        code, body = self.api.get("/service/tftp/reload")
        self.assertEqual(code, 200)
        self.assertIn("nothing to reload", body["service"]["tftp"])


class TemplateReloadTests(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="luna2d-templates-"))
        self.addCleanup(shutil.rmtree, str(self.folder), True)
        (self.folder / "hello.ipxe.j2").write_text("#!ipxe\necho {{ who }} one\n")
        self.renderer = render.Renderer(self.folder)
        self.reload = template_reloader(self.renderer)

    def test_reload_reads_changes(self) -> None:
        """Templates are kept compiled until a reload, which reads the
        edited file."""
        self.assertEqual(self.renderer.render("hello.ipxe.j2", who="a"), "#!ipxe\necho a one\n")
        (self.folder / "hello.ipxe.j2").write_text("#!ipxe\necho {{ who }} two\n")
        self.assertEqual(self.renderer.render("hello.ipxe.j2", who="a"), "#!ipxe\necho a one\n")
        self.assertEqual(self.reload(), "OK, reloaded 1 templates")
        self.assertEqual(self.renderer.render("hello.ipxe.j2", who="a"), "#!ipxe\necho a two\n")

    def test_broken_template_keeps_the_old(self) -> None:
        """A reload that meets a broken template fails (500) naming it and
        its line, and the templates in use stay the previous ones."""
        self.renderer.render("hello.ipxe.j2", who="a")
        (self.folder / "hello.ipxe.j2").write_text("#!ipxe\n\n{% if %}\n")
        with self.assertRaises(ServiceError) as caught:
            self.reload()
        self.assertEqual(caught.exception.status, 500)
        self.assertIn("hello.ipxe.j2 line 3", caught.exception.message)
        self.assertEqual(self.renderer.render("hello.ipxe.j2", who="a"), "#!ipxe\necho a one\n")

    def test_reload_over_http_failure(self) -> None:
        """Over HTTP a failed luna2 reload is a 500 JSON message."""
        api = BootAPI(self)
        api.services.reloaders["luna2"] = self.reload
        (self.folder / "broken.ipxe.j2").write_text("{{ unclosed\n")
        code, body = api.get("/service/luna2/reload")
        self.assertEqual(code, 500)
        self.assertIn("broken.ipxe.j2", body["message"])
