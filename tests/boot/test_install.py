"""/boot/install/<node> through the whole HTTP stack (StubTreq, whose requests
come from 127.0.0.1): who may fetch it, the node-scoped token it carries
(decoded and used), the provisioning method and fallback through
inheritance, pre/part/post scripts as plain text, BMC setup from the node's
effective bmcsetup, secrets, and a bash syntax check of what it renders."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import tempfile
from pathlib import Path

import jwt
from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from luna2d.store import objects
from tests.boot.support import TARBALL, BootAPI
from tests.support import SECRET, ReactorCase, env, result_of

TRICKY = "#!/bin/bash\necho \"$HOME\" '$x' `date` \\\nEOF\nLUNA2D\ncat <<EOF\nnested\nEOF\n"


def bash_syntax(script: str) -> defer.Deferred:
    """(stdout, stderr, code) of ``bash -n`` on ``script``."""
    handle, path = tempfile.mkstemp(suffix=".sh", prefix="luna2d-install-")
    with os.fdopen(handle, "w") as out:
        out.write(script)
    d = getProcessOutputAndValue("/bin/bash", ["-n", path], env={})

    def done(result: tuple) -> tuple:
        os.unlink(path)
        return result

    return d.addBoth(done)


class AccessTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self)
        self.api.bootable()

    def test_foreign_address_403(self) -> None:
        """Without a token, a request from an address that is not one of the
        node's is refused with 403 (node001 is 10.141.0.1, StubTreq is 127.0.0.1)."""
        code, body, _ = self.api.text("/boot/install/node001")
        self.assertEqual(code, 403)
        self.assertIn("node001", body["message"])

    def test_own_address_200(self) -> None:
        """A request from the node's provisioning address gets the script
        without a token (here under an admin's arming); another node's
        script stays refused."""
        self.api.on_loopback("node001")
        self.api.arm("node001")
        code, body, headers = self.api.text("/boot/install/node001")
        self.assertEqual(code, 200, body)
        self.assertEqual(headers[b"Content-Type"], [b"text/plain; charset=utf-8"])
        self.assertTrue(body.startswith("#!/bin/bash\n"))
        code, _, _ = self.api.text("/boot/install/node002")
        self.assertEqual(code, 403)

    def test_tokens(self) -> None:
        """An admin token gets any node's script; readonly and node tokens
        (even the node's own) get 403; a forged token 401; an unknown node 404."""
        code, _, _ = self.api.text("/boot/install/node002", token=self.api.admin_token)
        self.assertEqual(code, 200)
        result_of(self.api.store.write(objects.upsert, "user", "viewer", {"role": "readonly"}))
        for token in (self.api.token("readonly", "viewer"), self.api.token("node", node="node002")):
            code, _, _ = self.api.text("/boot/install/node002", token=token)
            self.assertEqual(code, 403)
        code, _, _ = self.api.text("/boot/install/node002", token="not.a.token")
        self.assertEqual(code, 401)
        code, body, _ = self.api.text("/boot/install/node999", token=self.api.admin_token)
        self.assertEqual(code, 404)
        self.assertIn("node999", body["message"])


class ContentTests(ReactorCase):
    def setUp(self) -> None:
        super().setUp()
        self.api = BootAPI(self)
        self.api.bootable()

    def script(self, node: str = "node001") -> str:
        code, body, _ = self.api.text(f"/boot/install/{node}", token=self.api.admin_token)
        self.assertEqual(code, 200, body)
        return body

    def exported(self, script: str, name: str) -> str:
        prefix = f"export {name}="
        return next(line[len(prefix) :] for line in script.splitlines() if line.startswith(prefix))

    def test_token_scoped_to_the_node(self) -> None:
        """The script's token, decoded with the ini's key, is a node token for
        this node alone, expiring after the API's token lifetime; with it the
        node may report its own state (204) but not another's, nor read the
        node list (403)."""
        token = self.exported(self.script(), "LUNA_TOKEN")
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
        )
        self.assertEqual(
            (claims["sub"], claims["role"], claims["node"]), ("node001", "node", "node001")
        )
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        self.assertEqual(claims["iat"], int(self.api.clock.seconds()))
        report = {"monitor": {"status": {"node001": {"state": "installer.start"}}}}
        self.assertEqual(self.api.post("/monitor/node/node001", report, token=token)[0], 204)
        other = {"monitor": {"status": {"node002": {"state": "installer.start"}}}}
        self.assertEqual(self.api.post("/monitor/node/node002", other, token=token)[0], 403)
        self.assertEqual(self.api.get("/config/node", token=token)[0], 403)

    def test_fresh_token_each_time(self) -> None:
        """Each fetch carries a token issued then."""
        first = self.exported(self.script(), "LUNA_TOKEN")
        self.api.clock.advance(10)
        second = self.exported(self.script(), "LUNA_TOKEN")
        self.assertNotEqual(first, second)

    def test_exports_and_endpoints(self) -> None:
        """The script names the node, its osimage and tarball, the
        controller's URL, and reports to /monitor/node/<node> and
        /config/node/<node>."""
        body = self.script()
        self.assertEqual(self.exported(body, "LUNA_IMAGEFILE"), TARBALL)
        self.assertEqual(self.exported(body, "LUNA_OSIMAGE"), "compute")
        self.assertEqual(self.exported(body, "_HOSTNAME"), "node001")
        self.assertEqual(self.exported(body, "_FQDN"), "node001.cluster")
        self.assertEqual(self.exported(body, "LUNA_URL"), "http://127.0.0.1:80")
        self.assertIn('luna_post "/monitor/node/node001"', body)
        self.assertIn('luna_post "/config/node/node001"', body)
        self.assertIn('"${LUNA_URL}/files/"compute.tar.gz', body)
        self.assertIn('{"monitor": {"status": {"node001": {"state": ', body)

    def test_provisioning_inheritance(self) -> None:
        """Method and fallback come from the cluster (torrent, http), are
        overridden by the group and then by the node."""
        body = self.script()
        self.assertEqual(
            (
                self.exported(body, "LUNA_PROVISION_METHOD"),
                self.exported(body, "LUNA_PROVISION_FALLBACK"),
            ),
            ("torrent", "http"),
        )
        code, _ = self.api.post(
            "/config/cluster",
            {"config": {"cluster": {"provision_method": "http", "provision_fallback": "none"}}},
        )
        self.assertEqual(code, 204)
        self.api.update("group", "compute", {"provision_method": None, "provision_fallback": None})
        body = self.script()
        self.assertEqual(
            (
                self.exported(body, "LUNA_PROVISION_METHOD"),
                self.exported(body, "LUNA_PROVISION_FALLBACK"),
            ),
            ("http", "none"),
        )
        self.api.update("group", "compute", {"provision_method": "torrent"})
        self.api.update("node", "node001", {"provision_fallback": "http"})
        body = self.script()
        self.assertEqual(
            (
                self.exported(body, "LUNA_PROVISION_METHOD"),
                self.exported(body, "LUNA_PROVISION_FALLBACK"),
            ),
            ("torrent", "http"),
        )

    def test_scripts_plain(self) -> None:
        """Pre, part and post scripts, sent base64 or plain, are written
        verbatim inside quoted here-documents (nothing to decode in the
        shell); the group's scripts are inherited; an absent one is left out."""
        import base64

        self.api.update(
            "group",
            "compute",
            {"partscript": base64.b64encode(b"mount -t tmpfs tmpfs /sysroot\n").decode()},
        )
        self.api.update("node", "node001", {"prescript": TRICKY})
        body = self.script()
        self.assertIn("\n" + TRICKY, body)
        self.assertIn("mount -t tmpfs tmpfs /sysroot\n", body)
        self.assertIn('cat > "${LUNA_TMP}/prescript.sh" <<\'PRESCRIPT_END_', body)
        self.assertIn('cat > "${LUNA_TMP}/partscript.sh" <<\'PARTSCRIPT_END_', body)
        self.assertNotIn('postscript.sh" <<', body)
        self.assertNotIn("base64", body)

    def test_bmc_setup(self) -> None:
        """With setupbmc (inherited from the group's bmcsetup) the script
        configures the BMC from the node's effective bmcsetup: address,
        netmask and gateway of its BMC interface's network, user id, name,
        password and channels; without it there is no ipmitool call."""
        self.api.update(
            "bmcsetup",
            "compute",
            {
                "password": "Bmc pass'word",
                "userid": 4,
                "netchannel": 2,
                "mgmtchannel": 3,
                "unmanaged_bmc_users": "disable",
            },
        )
        body = self.script()
        self.assertEqual(self.exported(body, "LUNA_SETUPBMC"), "1")
        self.assertIn("local netchannel=2 mgmtchannel=3 userid=4", body)
        self.assertIn("ipmitool lan set $netchannel ipaddr 10.148.0.1 ", body)
        self.assertIn("ipmitool lan set $netchannel netmask 255.255.0.0 ", body)
        self.assertIn("ipmitool lan set $netchannel defgw ipaddr 10.148.255.254 ", body)
        self.assertIn("ipmitool user set name $userid luna ", body)
        # The password only in the root-only command file ipmitool reads,
        # never on an ipmitool (or any other) command line.
        self.assertIn('\nuser set password 4 "Bmc pass\'word"\nLUNA2D_BMC_PASSWORD\n', body)
        self.assertIn('ipmitool exec "$commands" || failed=1', body)
        self.assertEqual(
            [line for line in body.splitlines() if "Bmc pass" in line],
            ['user set password 4 "Bmc pass\'word"'],
        )
        self.assertIn("ipmitool user disable $other", body)
        self.api.update("group", "compute", {"bmcsetup": False})
        body = self.script()
        self.assertEqual(self.exported(body, "LUNA_SETUPBMC"), "0")
        self.assertNotIn("Bmc pass", body)
        self.api.update("node", "node001", {"setupbmc": True, "bmcsetup": None})
        self.api.update("group", "compute", {"bmcsetupname": None})
        body = self.script()
        self.assertIn("no BMC setup is configured for node001", body)
        self.assertNotIn("ipmitool lan set", body)

    def test_bmc_password_file_cannot_carry(self) -> None:
        """A BMC password holding both quote kinds cannot be a word of
        ipmitool's command file: the script says so and counts the BMC setup
        as failed instead of putting the password on a command line."""
        self.api.update("bmcsetup", "compute", {"password": "a'b\"c"})
        body = self.script()
        self.assertNotIn("a'b", body)
        self.assertIn("holds both quote kinds or a line break", body)
        self.assertNotIn("ipmitool exec", body)

    def test_secrets(self) -> None:
        """The node's and its group's secrets with a path are written into
        the system root with umask 077, the node's after the group's, each
        as base64 decoded by ``base64 -d`` on the node."""
        code, _ = self.api.post(
            "/config/secrets/group/compute",
            env(
                "secrets",
                "group",
                {
                    "compute": [
                        {
                            "secretname": "shared",
                            "content": "GROUP-KEY",
                            "path": "/etc/shared.key",
                        }
                    ]
                },
            ),
        )
        self.assertEqual(code, 201)
        code, _ = self.api.post(
            "/config/secrets/node/node001",
            env(
                "secrets",
                "node",
                {
                    "node001": [
                        {
                            "secretname": "own",
                            "content": "NODE-KEY\nline 2",
                            "path": "/etc/app/own.key",
                        },
                        {"secretname": "nopath", "content": "NOWHERE"},
                    ]
                },
            ),
        )
        self.assertEqual(code, 201)
        body = self.script()
        self.assertIn("umask 077", body)
        self.assertIn('mkdir -p "${_SYSTEMROOT}"/etc/app', body)
        self.assertIn('base64 -d > "${_SYSTEMROOT}"/etc/app/own.key <<\'SECRET_END_', body)
        group_b64 = base64.b64encode(b"GROUP-KEY").decode()
        node_b64 = base64.b64encode(b"NODE-KEY\nline 2").decode()
        self.assertLess(body.index(group_b64), body.index(node_b64))
        self.assertNotIn(base64.b64encode(b"NOWHERE").decode(), body)
        self.assertNotIn(node_b64, self.script("node002"))

    async def run_write_secrets(self, script: str, before: str = "") -> tuple[Path, bytes, int]:
        """Run the script's ``write_secrets`` function alone in bash, with a
        fresh temporary system root (after the shell lines ``before``);
        answers (root, stderr, exit code)."""
        start = script.index("function write_secrets {")
        end = script.index("\n}\n", start) + 3
        root = Path(tempfile.mkdtemp(prefix="luna2d-sysroot-"))
        self.addCleanup(shutil.rmtree, str(root), True)
        program = root.parent / (root.name + ".sh")
        program.write_text(before + script[start:end] + "write_secrets\n")
        self.addCleanup(program.unlink)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "_SYSTEMROOT": str(root)}
        _, err, code = await getProcessOutputAndValue("/bin/bash", [str(program)], env=env)
        return root, err, code

    async def test_secrets_land_byte_for_byte(self) -> None:
        """A binary munge key (random bytes, NUL, CR/LF and 0xff included),
        sent base64 as the CLI sends it, and a text secret without a final
        line break, sent plain, land in the system root with exactly their
        bytes, mode 0600, when the rendered fragment runs in bash; the node's
        secret at the group's path wins."""
        munge = bytes(range(256)) + os.urandom(768) + b"\r\n\x00"
        code, _ = self.api.post(
            "/config/secrets/group/compute",
            env(
                "secrets",
                "group",
                {
                    "compute": [
                        {
                            "secretname": "munge",
                            "content": base64.b64encode(munge).decode(),
                            "path": "/etc/munge/munge.key",
                        },
                        {
                            "secretname": "motd",
                            "content": "group motd",
                            "path": "/etc/motd",
                        },
                    ]
                },
            ),
        )
        self.assertEqual(code, 201)
        code, _ = self.api.post(
            "/config/secrets/node/node001",
            env(
                "secrets",
                "node",
                {
                    "node001": [
                        {
                            "secretname": "license",
                            "content": "LICENSE: a\nno final newline",
                            "path": "/opt/app/license",
                        },
                        {"secretname": "empty", "content": "", "path": "/etc/empty"},
                        {
                            "secretname": "motd",
                            "content": "node motd\n",
                            "path": "/etc/motd",
                        },
                    ]
                },
            ),
        )
        self.assertEqual(code, 201)
        root, err, code = await self.run_write_secrets(self.script())
        self.assertEqual(code, 0, err)
        self.assertEqual((root / "etc/munge/munge.key").read_bytes(), munge)
        self.assertEqual((root / "opt/app/license").read_bytes(), b"LICENSE: a\nno final newline")
        self.assertEqual((root / "etc/empty").read_bytes(), b"")
        self.assertEqual((root / "etc/motd").read_bytes(), b"node motd\n")
        self.assertEqual(stat.S_IMODE((root / "etc/munge/munge.key").stat().st_mode), 0o600)

    async def test_secrets_fail_loudly(self) -> None:
        """The fragment's exit status is not 0 when a secret cannot be
        written (its folder is a file), so the installer reports it."""
        code, _ = self.api.post(
            "/config/secrets/node/node001",
            env(
                "secrets",
                "node",
                {"node001": [{"secretname": "k", "content": "key", "path": "/etc/x/k"}]},
            ),
        )
        self.assertEqual(code, 201)
        _, _, code = await self.run_write_secrets(self.script())
        self.assertEqual(code, 0)
        blocked = 'mkdir -p "${_SYSTEMROOT}/etc" && : > "${_SYSTEMROOT}/etc/x"\n'
        _, _, code = await self.run_write_secrets(self.script(), before=blocked)
        self.assertNotEqual(code, 0)

    async def test_bash_syntax(self) -> None:
        """``bash -n`` accepts the rendered script: bare, and with every
        feature on (tricky scripts, secrets, BMC setup, local install)."""
        _, err, code = await bash_syntax(self.script())
        self.assertEqual(code, 0, err)
        self.api.update(
            "node",
            "node001",
            {
                "prescript": TRICKY,
                "partscript": TRICKY,
                "postscript": "exit 0",
                "localinstall": True,
            },
        )
        self.api.update("bmcsetup", "compute", {"unmanaged_bmc_users": "delete", "username": "a b"})
        code, _ = self.api.post(
            "/config/secrets/node/node001",
            env(
                "secrets",
                "node",
                {"node001": [{"secretname": "own", "content": TRICKY, "path": "/etc/o w n"}]},
            ),
        )
        self.assertEqual(code, 201)
        script = self.script()
        self.assertIn("ipmitool user priv $other 15 $mgmtchannel", script)
        _, err, code = await bash_syntax(script)
        self.assertEqual(code, 0, err)

    async def test_bash_syntax_catches_breakage(self) -> None:
        """The syntax check can fail: a script cut in half does not pass."""
        script = self.script()
        _, _, code = await bash_syntax(script[: script.index("function provision {") + 30])
        self.assertNotEqual(code, 0)
