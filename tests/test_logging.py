"""The pieces of ``[LOGGER]`` and of the request log line, without a
process: the ini keys, which file twistd's logger writes, the level
filter, and how a request's user and refusal are told with secrets masked.
``tests/integration/test_logging.py`` runs the real daemon."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.logger import Logger
from twisted.trial import unittest

from luna2d import tap
from luna2d.errors import ConfigError, Unauthorized
from luna2d.resources.auth import Principal
from luna2d.resources.site import refusal_reason, request_user
from tests.test_config import GOOD, ConfigTestsBase, _replace


class LoggerConfigTests(ConfigTestsBase):
    def test_logfile_relative_to_the_ini(self) -> None:
        """LOGFILE is a path, relative ones taken from the ini's folder;
        without it, None (twistd's own destination)."""
        self.assertIsNone(self.load(GOOD).log_file)
        cfg = self.load(_replace(GOOD, "LOGGER", "LOGFILE", "log/luna2d.log"))
        self.assertEqual(cfg.log_file, self.folder / "log" / "luna2d.log")
        cfg = self.load(_replace(GOOD, "LOGGER", "LOGFILE", "/var/log/luna/luna2d.log"))
        self.assertEqual(cfg.log_file, Path("/var/log/luna/luna2d.log"))

    def test_where_twistd_logs(self) -> None:
        """twistd's --logger and --syslog are left alone; its --logfile wins
        over LOGFILE; LOGFILE wins over twistd's defaults; without either,
        stdout with -n and twistd.log without."""
        cfg = replace(self.load(GOOD), log_file=self.folder / "ini.log")
        self.assertIsNone(tap.twistd_observer_factory(cfg, {"logger": "x.y"}))
        self.assertIsNone(tap.twistd_observer_factory(cfg, {"syslog": True}))
        opened: list[Path] = []
        real_open = tap.open_log
        self.patch(tap, "open_log", lambda path: opened.append(path) or real_open(path))
        tap.twistd_observer_factory(cfg, {"logfile": str(self.folder / "cli.log")})
        tap.twistd_observer_factory(cfg, {"nodaemon": True})
        self.assertEqual(opened, [self.folder / "cli.log", self.folder / "ini.log"])
        opened.clear()
        factory = tap.twistd_observer_factory(replace(cfg, log_file=None), {"nodaemon": True})
        assert factory is not None
        factory()
        self.assertEqual(opened, [])

    def test_unwritable_logfile(self) -> None:
        """A LOGFILE that cannot be written is a ConfigError naming the key
        (a usage error at start), not a traceback."""
        (self.folder / "afile").write_text("")
        cfg = replace(self.load(GOOD), log_file=self.folder / "afile" / "luna.log")
        with self.assertRaises(ConfigError) as caught:
            tap.twistd_observer_factory(cfg, {})
        self.assertIn("[LOGGER] LOGFILE", str(caught.exception))

    def test_level_filter(self) -> None:
        """Events below LEVEL are dropped, the others written."""
        for level, kept in (
            ("debug", 5),
            ("info", 4),
            ("warning", 3),
            ("error", 2),
            ("critical", 1),
        ):
            out = io.StringIO()
            logger = Logger(observer=tap.log_observer(level, out))
            logger.debug("d")
            logger.info("i")
            logger.warn("w")  # noqa: G010 - twisted.logger names it warn
            logger.error("e")
            logger.critical("c")
            self.assertEqual(len(out.getvalue().splitlines()), kept, level)


class FakeRequest:
    def __init__(self, method: bytes, path: bytes, body: Any = None, answer: Any = None) -> None:
        self.method = method
        self.path = path
        self.content = io.BytesIO(json.dumps(body).encode() if body is not None else b"")
        self.refusal = json.dumps(answer).encode() if answer is not None else b""


class FakeAuth:
    def __init__(self, who: Any) -> None:
        self.who = who

    def principal(self, request: Any) -> Any:
        if isinstance(self.who, Exception):
            raise self.who
        return self.who


class RequestLineTests(unittest.TestCase):
    def test_user(self) -> None:
        """The token's user, a node token's node, a login's username
        (never its password), '-' without any, and why a token was not taken."""
        get = FakeRequest(b"GET", b"/config/node")
        self.assertEqual(request_user(get, FakeAuth(Principal("alice", "admin"))), "alice")
        self.assertEqual(
            request_user(get, FakeAuth(Principal("node001", "node", "node001"))),
            "node:node001",
        )
        self.assertEqual(request_user(get, FakeAuth(None)), "-")
        self.assertEqual(
            request_user(get, FakeAuth(Unauthorized("the token has expired"))),
            "- (the token has expired)",
        )
        login = FakeRequest(b"POST", b"/token", {"username": "bob", "password": "hunter2hunter2"})
        self.assertEqual(request_user(login, FakeAuth(None)), '"bob"')

    def test_refusal_masks_secrets(self) -> None:
        """A refusal's message is logged with every string the body held
        under a secret-looking field masked, however it was echoed."""
        body = {
            "config": {"secrets": {"node": {"n1": [{"name": "k", "content": "s3cr3t-c0ntent"}]}}},
            "bmcpassword": 123456789,
            "nested": {"community": ["pub'lic-x"]},
        }
        message = (
            "content: 's3cr3t-c0ntent' is bad; bmcpassword: got 123456789; "
            "community: got ['pub\\'lic-x']"
        )
        request = FakeRequest(b"POST", b"/config/x", body, {"message": message})
        reason = refusal_reason(request)
        assert reason is not None
        for secret in ("s3cr3t-c0ntent", "123456789", "pub'lic-x", "pub\\'lic-x"):
            self.assertNotIn(secret, reason)
        self.assertEqual(reason.count("***"), 3)

    def test_refusal_bounded(self) -> None:
        """A long message is cut; an answer that is not a JSON message is none."""
        request = FakeRequest(b"GET", b"/x", answer={"message": "x" * 1000})
        self.assertEqual(len(refusal_reason(request) or ""), 300)
        self.assertIsNone(refusal_reason(FakeRequest(b"GET", b"/x")))
