"""Contract tests: the fields the TrinityX ``luna`` CLI carries base64, sent
and read as the CLI sends and reads them, through the whole HTTP stack
(StubTreq over the resource tree).

From reading the CLI: it base64-encodes, when it sends them, a field's
text given inline or the bytes of a file given by path (``-qo``, ``-qG``,
``-qE``, ``-qc``, ``-qpre``/``-qpart``/``-qpost``, ``-qO``, and a secret's
content), and when it shows an object it base64-decodes those fields,
keeping a value that does not decode as it is. The bodies below are the
ones it builds (``name`` inside the object, interfaces under
``.../interfaces``, a secret as ``[{"name", "content", "path"}]``)."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path

from twisted.internet.utils import getProcessOutputAndValue

from tests.boot.support import MAC, BootAPI
from tests.support import ReactorCase, env
from tests.test_wire import cli_shows


def secrets(kind: str, owner: str, items: list) -> dict:
    """The body ``luna secrets add/change/clone`` sends for ``owner``."""
    return {"config": {"secrets": {kind: {owner: items}}}}


def b64(text: str | bytes) -> str:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


class CLIBase64Tests(ReactorCase):
    def setUp(self) -> None:
        super().setUp()
        self.api = BootAPI(self)
        self.api.bootable()

    def change(self, kind: str, name: str, fields: dict) -> None:
        """``luna <kind> change <name> ...``: the object's fields with its name."""
        body = env(kind, name, dict(fields, name=name))
        code, body = self.api.post(f"/config/{kind}/{name}", body)
        self.assertIn(code, (201, 204), body)

    def stored(self, kind: str, name: str, field: str) -> object:
        return self.api.store.state.get(kind, name).data.get(field)

    def test_kernel_options(self) -> None:
        """``luna osimage change compute -qo 'quiet console=ttyS0'``: the
        node boots with the decoded options on its imgargs line (not the
        base64 of issue 10), and the CLI shows them."""
        self.api.update("node", "node001", {"macaddr": MAC})
        self.change("osimage", "compute", {"kerneloptions": b64("quiet console=ttyS0")})
        self.assertEqual(self.stored("osimage", "compute", "kerneloptions"), "quiet console=ttyS0")
        script = self.api.script(f"/boot/search/mac/{MAC}")
        self.assertIn(" quiet console=ttyS0 initrd=initrd.img\n", script)
        self.assertNotIn(b64("quiet console=ttyS0"), script)
        shown = self.api.show("osimage", "compute")["kerneloptions"]
        self.assertEqual(shown, "quiet console=ttyS0")  # plain: what the spec shows
        self.assertEqual(cli_shows(shown), "quiet console=ttyS0")

    def test_kernel_options_checked_after_decoding(self) -> None:
        """The imgargs check applies to the decoded text: base64 cannot
        smuggle ``||`` onto iPXE's command line."""
        code, body = self.api.post(
            "/config/osimage/compute",
            env("osimage", "compute", {"name": "compute", "kerneloptions": b64("quiet || shell")}),
        )
        self.assertEqual(code, 400, body)
        self.assertIn("kerneloptions", body["message"])

    def test_grab_lists(self) -> None:
        """``luna osimage change compute -qG '/, /boot' -qE '/proc/*'``:
        the lists are the decoded paths, not ``["LywgL2Jvb3Q="]``."""
        self.change(
            "osimage",
            "compute",
            {"grab_filesystems": b64("/, /boot"), "grab_exclude": b64("/proc/*,/sys/*")},
        )
        self.assertEqual(self.stored("osimage", "compute", "grab_filesystems"), ["/", "/boot"])
        self.assertEqual(self.stored("osimage", "compute", "grab_exclude"), ["/proc/*", "/sys/*"])

    def test_comment(self) -> None:
        """``-qc``: a comment the CLI sends base64 is kept as its text and
        answered plain, which the CLI shows as it is; a comment whose text
        is itself base64-like is answered base64, so the CLI still shows it
        right; plain comments from curl stay plain."""
        self.change("group", "compute", {"comment": b64("GPU nodes, rack 4")})
        self.assertEqual(self.stored("group", "compute", "comment"), "GPU nodes, rack 4")
        shown = self.api.show("group", "compute")["comment"]
        self.assertEqual((shown, cli_shows(shown)), ("GPU nodes, rack 4", "GPU nodes, rack 4"))
        self.change("group", "compute", {"comment": b64("Zm9v")})
        self.assertEqual(self.stored("group", "compute", "comment"), "Zm9v")
        shown = self.api.show("group", "compute")["comment"]
        self.assertEqual((shown, cli_shows(shown)), (b64("Zm9v"), "Zm9v"))
        self.change("group", "compute", {"comment": "Default group"})
        self.assertEqual(self.api.show("group", "compute")["comment"], "Default group")

    def test_cluster_comment(self) -> None:
        """``luna cluster change -qc``: the cluster's comment follows the
        same rule as every kind's (``{"config": {"cluster": {...}}}``)."""
        for text, answered in (("Main cluster", "Main cluster"), ("Zm9v", b64("Zm9v"))):
            body = {"config": {"cluster": {"comment": b64(text)}}}
            code, body = self.api.post("/config/cluster", body)
            self.assertIn(code, (201, 204), body)
            code, body = self.api.get("/config/cluster")
            self.assertEqual(body["config"]["cluster"]["comment"], answered)
            self.assertEqual(cli_shows(answered), text)

    def test_answer_sent_back_unchanged(self) -> None:
        """What a GET answers, POSTed back (as curl users and the CLI's
        editor do), stores the same value, for every marked field."""
        values = {"comment": "Zm9v", "kerneloptions": "quiet", "grab_filesystems": b64("/,/boot")}
        self.change("osimage", "compute", {k: b64(v) for k, v in values.items()})
        before = self.api.store.state.get("osimage", "compute").data.copy()
        shown = self.api.show("osimage", "compute")
        self.change("osimage", "compute", {k: shown[k] for k in values})
        self.assertEqual(self.api.store.state.get("osimage", "compute").data, before)

    def test_scripts(self) -> None:
        """``luna group change compute -qpre ...``: the script is decoded,
        answered base64 (as before, and as the spec's examples), and written
        into the install script as text."""
        self.change("group", "compute", {"prescript": b64("echo pre\n")})
        self.assertEqual(self.stored("group", "compute", "prescript"), "echo pre\n")
        shown = self.api.node("node001")["prescript"]
        self.assertEqual((shown, cli_shows(shown)), (b64("echo pre\n"), "echo pre\n"))

    def test_interface_options(self) -> None:
        """``luna node changeinterface node001 BOOTIF -qO 'MTU=9000'``: POST
        ``.../interfaces`` with the options base64; they are stored as text,
        and the CLI shows them from ``GET .../interfaces/BOOTIF``."""
        code, body = self.api.post(
            "/config/node/node001/interfaces",
            env(
                "node",
                "node001",
                {"interfaces": [{"interface": "BOOTIF", "options": b64("MTU=9000\nZONE=trusted")}]},
            ),
        )
        self.assertIn(code, (201, 204), body)
        item = self.api.store.state.get("node", "node001").iface("BOOTIF")
        self.assertEqual(item.options, "MTU=9000\nZONE=trusted")
        code, body = self.api.get("/config/node/node001/interfaces/BOOTIF")
        self.assertEqual(code, 200, body)
        [entry] = body["config"]["node"]["node001"]["interfaces"]
        self.assertEqual(cli_shows(entry["options"]), "MTU=9000\nZONE=trusted")

    def test_group_interface_options_reach_new_nodes(self) -> None:
        """A group interface's options, copied to a node created in the
        group, stay the same text, even when that text looks like base64
        (the copy is not decoded a second time)."""
        code, body = self.api.post(
            "/config/group/compute/interfaces",
            env(
                "group",
                "compute",
                {
                    "interfaces": [
                        {"interface": "ib0", "network": "cluster", "options": b64("Zm9v")}
                    ]
                },
            ),
        )
        self.assertIn(code, (201, 204), body)
        code, body = self.api.post(
            "/config/node/node100", env("node", "node100", {"group": "compute"})
        )
        self.assertEqual(code, 201, body)
        self.assertEqual(self.api.store.state.get("node", "node100").iface("ib0").options, "Zm9v")

    async def test_munge_key_byte_for_byte(self) -> None:
        """``luna secrets add node node001 munge -qc /etc/munge/munge.key -p
        /etc/munge/munge.key``: the key's bytes, sent base64, are kept as
        bytes, answered base64, and written on the node byte for byte by
        the install script's fragment run in bash (issue 10 saw the base64
        text written instead)."""
        key = os.urandom(1024)
        code, body = self.api.post(
            "/config/secrets/node/node001",
            secrets(
                "node",
                "node001",
                [{"content": b64(key), "path": "/etc/munge/munge.key", "name": "munge"}],
            ),
        )
        self.assertEqual(code, 201, body)
        code, body = self.api.get("/config/secrets/node/node001/munge")
        self.assertEqual(code, 200, body)
        [item] = body["config"]["secrets"]["node"]["node001"]
        self.assertEqual(base64.b64decode(item["content"]), key)
        code, script, _ = self.api.text("/boot/install/node001", token=self.api.admin_token)
        self.assertEqual(code, 200, script)
        start = script.index("function write_secrets {")
        end = script.index("\n}\n", start) + 3
        root = Path(tempfile.mkdtemp(prefix="luna2d-sysroot-"))
        self.addCleanup(shutil.rmtree, str(root), True)
        program = root.parent / (root.name + ".sh")
        program.write_text(script[start:end] + "write_secrets\n")
        self.addCleanup(program.unlink)
        env_vars = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "_SYSTEMROOT": str(root)}
        _, err, code = await getProcessOutputAndValue("/bin/bash", [str(program)], env=env_vars)
        self.assertEqual(code, 0, err)
        self.assertEqual((root / "etc/munge/munge.key").read_bytes(), key)

    def test_secret_text_and_change(self) -> None:
        """A text secret sent base64 by the CLI is answered as its text
        (which the CLI shows as it is); ``luna secrets change`` with new
        content answers 204; plain text from curl is still accepted."""
        code, body = self.api.post(
            "/config/secrets/group/compute",
            secrets(
                "group",
                "compute",
                [{"content": b64("license-key: 42\n"), "path": "/etc/app.lic", "name": "lic"}],
            ),
        )
        self.assertEqual(code, 201, body)
        code, body = self.api.get("/config/secrets/group/compute/lic")
        [item] = body["config"]["secrets"]["group"]["compute"]
        self.assertEqual(
            (item["content"], cli_shows(item["content"])),
            ("license-key: 42\n", "license-key: 42\n"),
        )
        code, body = self.api.post(
            "/config/secrets/group/compute",
            secrets("group", "compute", [{"content": b64("license-key: 43\n"), "name": "lic"}]),
        )
        self.assertEqual(code, 204, body)
        code, body = self.api.post(
            "/config/secrets/group/compute",
            secrets(
                "group",
                "compute",
                [{"secretname": "plain", "content": "s3cr3t text", "path": "/etc/plain"}],
            ),
        )
        self.assertEqual(code, 201, body)
        owner = self.api.store.state.get("group", "compute")
        self.assertEqual(
            {s.name: s.content for s in owner.secrets},
            {"lic": b"license-key: 43\n", "plain": b"s3cr3t text"},
        )

    def test_secret_clone_as_the_cli_sends_it(self) -> None:
        """``luna secrets clone node node001 munge munge2`` sends
        ``content: false`` and ``path: null`` (no -qc, no -p): the copy keeps
        the source's bytes and path."""
        key = os.urandom(64)
        code, body = self.api.post(
            "/config/secrets/node/node001",
            secrets(
                "node",
                "node001",
                [{"content": b64(key), "path": "/etc/munge/munge.key", "name": "munge"}],
            ),
        )
        self.assertEqual(code, 201, body)
        item = {"newsecretname": "munge2", "content": False, "path": None, "name": "munge"}
        code, body = self.api.post(
            "/config/secrets/node/node001/munge/_clone", secrets("node", "node001", [item])
        )
        self.assertEqual(code, 201, body)
        copy = self.api.store.state.get("node", "node001").secret("munge2")
        self.assertEqual((copy.content, copy.path), (key, "/etc/munge/munge.key"))

    def test_secret_content_errors(self) -> None:
        """Content that is neither text nor base64 is refused naming the
        field; plain text with NUL is refused (binary goes base64)."""
        for content, words in (
            ([1], "content: expected a string"),
            ("a\x00b", "content: plain text must not contain NUL"),
        ):
            code, body = self.api.post(
                "/config/secrets/node/node001",
                secrets("node", "node001", [{"name": "k", "content": content, "path": "/k"}]),
            )
            self.assertEqual(code, 400, body)
            self.assertIn(words, body["message"])
