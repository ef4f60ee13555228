"""luna2d.counters: the one counter type of DHCP, TFTP, its file cache and
the IPMI client. Declared names only (a typo raises at once), counts only go
up, a snapshot is a copy, the health text lists what is not zero in name
order; and each service's counters are made of this type with the names it
counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.counters import Counters
from luna2d.ipmi.client import IPMIClient
from luna2d.protocols.dhcp import protocol as dhcp
from luna2d.protocols.dhcp.policy import EVENTS
from luna2d.protocols.tftp import server as tftp
from luna2d.protocols.tftp.files import TFTPFiles


class CountersTests(unittest.TestCase):
    def test_counts_declared_names(self) -> None:
        """Each declared name starts at 0 and counts by 1 or by n."""
        counters = Counters(("sent", "received"))
        counters.incr("sent")
        counters.incr("sent", 4)
        counters.incr("received", 0)
        self.assertEqual((counters["sent"], counters["received"]), (5, 0))

    def test_undeclared_name_refused(self) -> None:
        """A name that was not declared raises KeyError, to count or to read,
        and names the declared ones; nothing is added."""
        counters = Counters(("sent",))
        with self.assertRaises(KeyError) as caught:
            counters.incr("snet")
        self.assertIn("'snet'", str(caught.exception))
        self.assertIn("declared: sent", str(caught.exception))
        self.assertRaises(KeyError, counters.__getitem__, "recieved")
        self.assertEqual(counters.snapshot(), {"sent": 0})

    def test_counts_only_go_up(self) -> None:
        counters = Counters(("sent",))
        self.assertRaises(ValueError, counters.incr, "sent", -1)
        self.assertEqual(counters["sent"], 0)

    def test_bad_declarations(self) -> None:
        """No names, or one name twice, is a programming error."""
        self.assertRaises(ValueError, Counters, ())
        self.assertRaises(ValueError, Counters, ("sent", "sent"))

    def test_snapshot_is_a_copy_in_declaration_order(self) -> None:
        counters = Counters(("b", "a"))
        counters.incr("a")
        snapshot = counters.snapshot()
        self.assertEqual(list(snapshot.items()), [("b", 0), ("a", 1)])
        snapshot["a"] = 99
        self.assertEqual(counters["a"], 1)

    def test_text_lists_what_is_not_zero(self) -> None:
        """In name order, zeros left out; a quiet service gives ''."""
        counters = Counters(("started", "completed", "failed"))
        self.assertEqual(counters.text(), "")
        counters.incr("started", 2)
        counters.incr("completed")
        self.assertEqual(counters.text(), "completed 1, started 2")

    def test_no_attribute_counting(self) -> None:
        """The attribute style of the old dataclasses is gone: writing an
        attribute fails instead of making a counter nobody reads."""
        counters = Counters(("sent",))
        with self.assertRaises(AttributeError):
            counters.sent = 1  # type: ignore[attr-defined]


class ServicesUseCountersTests(unittest.TestCase):
    """Every service counts with the one type, under the names it declares."""

    def test_dhcp(self) -> None:
        policy: Any = None
        server = dhcp.DHCPServer(
            Clock(), [], policy, load=defer.Deferred, save=lambda changes: defer.succeed(None)
        )
        self.assertIsInstance(server.stats, Counters)
        self.assertEqual(list(server.stats.snapshot()), list(dhcp.COUNTERS))
        for event in EVENTS:
            self.assertEqual(server.stats[event], 0)

    def test_tftp(self) -> None:
        files = TFTPFiles(Path(self.mktemp()), Clock(), defer.maybeDeferred)
        server = tftp.TFTPServer(files, Clock())
        self.assertIsInstance(server.stats, Counters)
        self.assertIsInstance(files.stats, Counters)
        self.assertEqual(list(server.stats.snapshot()), list(tftp.COUNTERS))
        self.assertEqual(list(files.stats.snapshot()), ["lookups", "cache_hits", "reads", "merged"])

    def test_ipmi(self) -> None:
        client = IPMIClient(Clock())
        self.assertIsInstance(client.stats, Counters)
        self.assertEqual(client.stats["sessions"], 0)


class HealthTextTests(unittest.TestCase):
    """/monitor/service/tftp's text reads the counters as it did: nothing
    after the port while quiet, then the counters that are not zero, by name."""

    def test_tftp_health_text(self) -> None:
        from twisted.internet import reactor

        root = Path(self.mktemp())
        root.mkdir()
        service = tftp.TFTPService(reactor, 0, root, None, interface="127.0.0.1")
        service.bind()
        self.addCleanup(service.stopService)
        port = service.bound_port
        quiet = f"TFTP listening on UDP {port}, 0 transfers under way"
        self.assertEqual(service.health(), (True, quiet))
        service.server.stats.incr("started", 2)
        service.server.stats.incr("completed", 2)
        service.server.stats.incr("retransmissions", 0)
        self.assertEqual(service.health(), (True, quiet + "; completed 2, started 2"))


class DHCPEventsDeclaredTests(unittest.TestCase):
    def test_every_outcome_event_is_a_counter(self) -> None:
        """The DHCP server counts ``outcome.event`` by name, and an undeclared
        name raises: every event the policy can answer with (the literals
        handed to ``Outcome`` and to the ``event`` it builds) is declared in
        ``EVENTS``, and ``EVENTS`` declares nothing the policy never says."""
        import ast
        import inspect

        from luna2d.protocols.dhcp import policy

        tree = ast.parse(inspect.getsource(policy))
        said: set[str] = set()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Outcome"
            ):
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    said.add(first.value)
                else:
                    self.assertIsInstance(first, ast.Name, ast.dump(first))
                    assert isinstance(first, ast.Name)
                    self.assertEqual(first.id, "event")
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "event"
            ):
                said |= {
                    c.value
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
        self.assertEqual(said, set(EVENTS))
