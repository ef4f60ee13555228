"""``[LOGGER] LEVEL`` and ``LOGFILE`` with the real daemon (``twistd
luna2d`` as a process, over real HTTP on loopback): the log goes to LOGFILE,
events below LEVEL are dropped, each request is one line naming its user,
a 4xx says why it was refused, and no password or token is ever written."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_daemon import (
    ADMIN,
    PASSWORD,
    SECRET,
    Daemon,
    free_port,
    ini_text,
)
from tests.support import ReactorCase

WRONG_PASSWORD = "wrong-password-7f3a9c"
BMC_PASSWORD = "bmc-secret-42b7e1"


def logged_ini(port: int, level: str) -> str:
    return ini_text(port) + f"\n[LOGGER]\nLEVEL = {level}\nLOGFILE = var/log/luna2d.log\n"


class LoggerTests(ReactorCase):
    async def run_daemon(self, level: str) -> tuple[Daemon, str, str]:
        """A daemon logging at ``level``, after a fixed round of requests:
        (daemon, log file text, twistd's own output)."""
        port = free_port()
        daemon = Daemon(self, ini=logged_ini(port, level))
        daemon.port = port
        await daemon.start()
        code, _ = await daemon.call(
            "POST", "/token", {"username": ADMIN, "password": WRONG_PASSWORD}
        )
        self.assertEqual(code, 401)
        token = await daemon.token()
        self.token = token
        code, _ = await daemon.call("GET", "/config/node", token=token)
        self.assertEqual(code, 200)
        code, _ = await daemon.call("GET", "/config/node/node999", token=token)
        self.assertEqual(code, 404)
        # A secret sent in a form the daemon refuses: the answer names the
        # field and echoes the value to the sender, the log must not.
        code, body = await daemon.call(
            "POST",
            "/config/bmcsetup/compute",
            {"config": {"bmcsetup": {"compute": {"password": [BMC_PASSWORD]}}}},
            token=token,
        )
        self.assertEqual(code, 400, body)
        self.assertIn(BMC_PASSWORD, body["message"])
        # A body with a token that is not one: refused before the body.
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        self.forged = forged
        code, _ = await daemon.call("POST", "/config/node/node001", {"config": {}}, token=forged)
        self.assertEqual(code, 401)
        await daemon.stop()
        log_file = daemon.folder / "var" / "log" / "luna2d.log"
        self.assertTrue(log_file.is_file(), daemon.output())
        return daemon, log_file.read_text(), daemon.output()

    def assert_no_secrets(self, text: str) -> None:
        for secret in (
            PASSWORD,
            WRONG_PASSWORD,
            BMC_PASSWORD,
            SECRET,
            self.token,
            self.forged,
        ):
            self.assertNotIn(secret, text)

    async def test_info(self) -> None:
        """At info: every request is a line with its user; the refused
        ones say why; nothing of it on twistd's stdout; no secret anywhere."""
        daemon, text, output = await self.run_daemon("info")
        lines = text.splitlines()

        def line(fragment: str) -> str:
            found = [x for x in lines if fragment in x]
            self.assertTrue(found, f"no line with {fragment!r} in\n{text}")
            return found[0]

        self.assertIn('user="luna"', line("POST /token 401"))
        self.assertIn("invalid username or password", line("POST /token 401"))
        self.assertIn('user="luna"', line("POST /token 201"))
        self.assertIn("user=luna", line("GET /config/node 200"))
        self.assertIn("node999", line("GET /config/node/node999 404 user=luna"))
        refused = line("POST /config/bmcsetup/compute 400 user=luna")
        self.assertIn("password", refused)
        self.assertIn("***", refused)
        self.assertIn("listening on", text)
        early = line("POST /config/node/node001 401")
        self.assertIn("user=- (the token is invalid)", early)
        self.assertIn("(before the body)", early)
        self.assertNotIn("GET /config/node", output)
        self.assert_no_secrets(text)
        self.assert_no_secrets(output)
        self.assertEqual(
            Path(daemon.folder / "var" / "log" / "luna2d.log").stat().st_mode & 0o777,
            0o640,
        )

    async def test_warning(self) -> None:
        """At warning: info lines (successful requests, start-up) are
        dropped; the refused login, a warning, is kept."""
        _, text, output = await self.run_daemon("warning")
        self.assertIn("POST /token 401", text)
        self.assertIn("POST /config/node/node001 401", text)
        self.assertNotIn("GET /config/node 200", text)
        self.assertNotIn("POST /token 201", text)
        self.assertNotIn("GET /config/node/node999 404", text)
        self.assertNotIn("listening on", text)
        self.assert_no_secrets(text)
        self.assert_no_secrets(output)
