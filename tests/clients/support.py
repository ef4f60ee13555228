"""What the client-contract tests share: BMCs held by the test, and a
TestCase with the whole API through StubTreq on a Clock over them."""

from __future__ import annotations

import json
import shutil
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from luna2d.ipmi.session import Outcome
from tests.support import API, hash_inline


class HeldIPMI:
    """An IPMI client whose BMCs answer when the test says so: ``run``
    hands out a Deferred per node, kept in ``pending``."""

    def __init__(self) -> None:
        self.pending: dict[str, defer.Deferred[Outcome]] = {}

    def run(
        self, target: Any, command: Any, cipher_suite: int | None = None
    ) -> defer.Deferred[Outcome]:
        self.pending[target.key] = defer.Deferred()
        return self.pending[target.key]


class HeldIPMICase(unittest.TestCase):
    """``self.api`` (StubTreq, a Clock, hashing inline) whose IPMI client is
    ``self.ipmi``, a :class:`HeldIPMI`; the store is closed and removed at
    cleanup."""

    def setUp(self) -> None:
        hash_inline(self)
        self.ipmi = HeldIPMI()
        self.api = API(ipmi=self.ipmi)
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def request(self, method: str, path: str, body: bytes | None = None) -> defer.Deferred[Any]:
        """Send ``method path`` with the admin token and let StubTreq run."""
        extra: dict[str, Any] = {} if body is None else {"data": body}
        d: defer.Deferred[Any] = self.api.treq.request(
            method,
            f"http://luna{path}",
            headers={"x-access-tokens": self.api.admin_token},
            **extra,
        )
        self.api.treq.flush()
        return d

    def body_of(self, d: defer.Deferred[Any]) -> tuple[int, Any]:
        """The status code and the JSON body of the answer ``d`` fired with."""
        response = self.successResultOf(d)
        content = response.content()
        self.api.treq.flush()
        return response.code, json.loads(self.successResultOf(content))
