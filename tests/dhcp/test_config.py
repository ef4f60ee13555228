"""The ini's [DHCP] section: ENABLED, INTERFACES (comma-separated) and
LEASE_TIME become a typed DHCPConfig; mistakes are ConfigErrors naming the
key."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.trial import unittest

from luna2d.config import DHCPConfig, load
from luna2d.errors import ConfigError

BASE = """[API]
USERNAME = luna
PASSWORD = secret-password
SECRET_KEY = a-secret-key-of-enough-length
[DATABASE]
DATABASE = var/luna.db
"""


class DHCPConfigTests(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="luna2d-dhcp-ini-"))
        self.addCleanup(shutil.rmtree, str(self.folder), True)

    def load(self, section: str) -> DHCPConfig:
        ini = self.folder / "luna.ini"
        ini.write_text(BASE + section)
        cfg = load(ini)
        assert isinstance(cfg.dhcp, DHCPConfig)
        return cfg.dhcp

    def test_interfaces_and_lease_time(self) -> None:
        """ENABLED, the interface list (spaces allowed) and LEASE_TIME as a duration."""
        dhcp = self.load(
            "[DHCP]\nENABLED = yes\nINTERFACES = eth1, ens2f0 ,bond0.100\nLEASE_TIME = 8h\n"
        )
        self.assertTrue(dhcp.enabled)
        self.assertEqual(dhcp.interfaces, ("eth1", "ens2f0", "bond0.100"))
        self.assertEqual(dhcp.lease_time, 8 * 3600)

    def test_defaults(self) -> None:
        """Without a [DHCP] section DHCP is off, with no interfaces and a 1 h lease."""
        dhcp = self.load("")
        self.assertEqual((dhcp.enabled, dhcp.interfaces, dhcp.lease_time), (False, (), 3600))

    def test_unknown_key_refused(self) -> None:
        """A key [DHCP] does not know (a typo of LEASE_TIME here) stops the
        start, naming the section, the key and the keys it knows."""
        exc = self.assertRaises(ConfigError, self.load, "[DHCP]\nENABLED = no\nLEASETIME = 8h\n")
        self.assertEqual(
            str(exc),
            "[DHCP] LEASETIME: unknown key (known: ENABLED, INTERFACES, "
            "LEASE_TIME, MAX_OFFERS, OFFER_BURST, OFFER_RATE)",
        )

    def test_errors(self) -> None:
        """A name that is no interface name and a bad lease time are refused,
        naming the key."""
        cases = {
            "[DHCP]\nENABLED = yes\nINTERFACES = eth1,../x\n": "[DHCP] INTERFACES",
            "[DHCP]\nENABLED = yes\nINTERFACES = averyveryverylongname0\n": "[DHCP] INTERFACES",
            "[DHCP]\nLEASE_TIME = soon\n": "[DHCP] LEASE_TIME",
        }
        for section, where in cases.items():
            with self.assertRaises(ConfigError, msg=section) as caught:
                self.load(section)
            self.assertIn(where, str(caught.exception))
