"""luna2d.config: the ini file is read into frozen dataclasses, relative paths
are taken against the ini's folder, and every broken file raises a
ConfigError whose message names the section and the key at fault."""

from __future__ import annotations

import dataclasses
import os
import textwrap
from pathlib import Path

from twisted.trial import unittest

from luna2d import config
from luna2d.errors import ConfigError

GOOD = """\
[API]
USERNAME = luna
PASSWORD = luna-password
SECRET_KEY = 0123456789abcdef0123
EXPIRY = 1h

[DATABASE]
DRIVER = SQLite3
DATABASE = db/luna.db

[FILES]
KEYFILE = keys/luna.key
IMAGE_FILES = /srv/luna/files
"""


def _replace(text: str, section: str, key: str, value: str | None) -> str:
    """``text`` with ``key`` in ``section`` set to ``value`` (None: removed)."""
    out: list[str] = []
    current = None
    done = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if current == section and not done and value is not None:
                out.insert(len(out) - (1 if out and not out[-1].strip() else 0), f"{key} = {value}")
                done = True
            current = stripped[1:-1]
        elif current == section and "=" in line and line.split("=", 1)[0].strip() == key:
            if value is not None:
                out.append(f"{key} = {value}")
            done = True
            continue
        out.append(line)
    if not done and value is not None:
        if current != section:
            out.append(f"[{section}]")
        out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


class ConfigTestsBase(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(self.mktemp()).absolute()
        self.folder.mkdir(parents=True)

    def write(self, text: str, name: str = "luna.ini") -> Path:
        path = self.folder / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def load(self, text: str) -> config.Config:
        return config.load(self.write(text))

    def broken(self, text: str) -> str:
        """The message of the ConfigError loading ``text`` raises."""
        exc = self.assertRaises(ConfigError, config.load, self.write(text))
        return str(exc)


class GoodConfigTests(ConfigTestsBase):
    def test_good_ini_loads(self) -> None:
        """A complete ini loads into the documented values and defaults."""
        cfg = self.load(GOOD)
        self.assertEqual(cfg.api.username, "luna")
        self.assertEqual(cfg.api.password, "luna-password")
        self.assertEqual(cfg.api.secret_key, "0123456789abcdef0123")
        self.assertEqual(cfg.api.expiry, 3600)
        self.assertEqual(cfg.api.protocol, "http")
        self.assertEqual(cfg.database.driver, "SQLite3")
        self.assertEqual(cfg.database.synchronous, "NORMAL")
        self.assertEqual(cfg.path, (self.folder / "luna.ini").resolve())
        self.assertTrue(cfg.bootstrap)
        self.assertEqual(cfg.controller_name, "controller")
        self.assertIsNone(cfg.controller_ip)
        self.assertEqual(cfg.cluster_name, "cluster")
        self.assertEqual(cfg.log_level, "info")
        self.assertFalse(cfg.dhcp.enabled)
        self.assertFalse(cfg.tftp.enabled)
        self.assertFalse(cfg.dns.enabled)

    def test_config_is_frozen(self) -> None:
        """The loaded Config cannot be changed afterwards."""
        cfg = self.load(GOOD)
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, cfg.api, "username", "root")
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, cfg, "bootstrap", False)

    def test_relative_paths_resolved_against_ini_folder(self) -> None:
        """Relative DATABASE, KEYFILE and default paths are taken against the
        folder holding the ini, not the current directory; absolute ones stay."""
        elsewhere = Path(self.mktemp()).absolute()
        elsewhere.mkdir(parents=True)
        cwd = os.getcwd()
        os.chdir(elsewhere)
        self.addCleanup(os.chdir, cwd)
        cfg = config.load(self.write(GOOD))
        base = self.folder.resolve()
        self.assertEqual(cfg.database.database, base / "db" / "luna.db")
        self.assertEqual(cfg.files.keyfile, base / "keys" / "luna.key")
        self.assertEqual(cfg.files.image_files, Path("/srv/luna/files"))
        self.assertEqual(cfg.files.image_directory, base / "images")

    def test_relative_ini_path(self) -> None:
        """An ini given by a relative path still resolves against its own folder."""
        self.write(GOOD)
        cwd = os.getcwd()
        os.chdir(self.folder.parent)
        self.addCleanup(os.chdir, cwd)
        cfg = config.load(Path(self.folder.name) / "luna.ini")
        self.assertEqual(cfg.database.database, self.folder.resolve() / "db" / "luna.db")

    def test_expiry_units(self) -> None:
        """EXPIRY accepts 1h, 30m, plain seconds, 45s and 2d."""
        for text, seconds in (
            ("1h", 3600),
            ("30m", 1800),
            ("3600", 3600),
            ("45s", 45),
            ("2d", 172800),
            ("90M", 5400),
        ):
            cfg = self.load(_replace(GOOD, "API", "EXPIRY", text))
            self.assertEqual(cfg.api.expiry, seconds, text)

    def test_expiry_default(self) -> None:
        """Without EXPIRY tokens live one hour."""
        cfg = self.load(_replace(GOOD, "API", "EXPIRY", None))
        self.assertEqual(cfg.api.expiry, 3600)

    def test_endpoint_default(self) -> None:
        """Without ENDPOINT the API listens on 0.0.0.0:7050."""
        cfg = self.load(GOOD)
        self.assertEqual((cfg.api.host, cfg.api.port), ("0.0.0.0", 7050))

    def test_endpoint_given(self) -> None:
        """ENDPOINT host:port is split; [v6]:port and :port work too."""
        for text, expected in (
            ("127.0.0.1:8080", ("127.0.0.1", 8080)),
            ("[::1]:7051", ("::1", 7051)),
            (":7052", ("0.0.0.0", 7052)),
        ):
            cfg = self.load(_replace(GOOD, "API", "ENDPOINT", text))
            self.assertEqual((cfg.api.host, cfg.api.port), expected, text)

    def test_quoted_values(self) -> None:
        """Values wrapped in quotes lose their quotes."""
        cfg = self.load(_replace(GOOD, "API", "USERNAME", '"admin"'))
        self.assertEqual(cfg.api.username, "admin")

    def test_unknown_sections_are_fine(self) -> None:
        """Sections luna2d does not know (other tools' settings) are ignored."""
        cfg = self.load(GOOD + "\n[WHATEVER]\nANYTHING = 1\n[CLIENT]\nTIMEOUT = x\n")
        self.assertEqual(cfg.api.username, "luna")

    def test_service_sections(self) -> None:
        """ENABLED is parsed as a bool; [DNS], which luna2d does not serve yet,
        keeps its other keys as options."""
        cfg = self.load(
            GOOD + "\n[DHCP]\nENABLED = yes\n[DNS]\nENABLED = no\nFORWARDER = 10.0.0.1\n"
            "[TFTP]\nENABLED = off\n"
        )
        self.assertTrue(cfg.dhcp.enabled)
        self.assertFalse(cfg.dns.enabled)
        self.assertEqual(cfg.dns.options, {"FORWARDER": "10.0.0.1"})
        self.assertFalse(cfg.tftp.enabled)

    def test_bootstrap_section(self) -> None:
        """[BOOTSTRAP] gives the controller's name and address and can turn
        the sample cluster off."""
        cfg = self.load(
            GOOD
            + "\n[BOOTSTRAP]\nENABLED = no\nCONTROLLER = ctl1\nCONTROLLER_IP = 10.141.255.250\n"
            "CLUSTER = mycluster\n"
        )
        self.assertFalse(cfg.bootstrap)
        self.assertEqual(cfg.controller_name, "ctl1")
        self.assertEqual(cfg.controller_ip, "10.141.255.250")
        self.assertEqual(cfg.cluster_name, "mycluster")

    def test_control_defaults(self) -> None:
        """Without [CONTROL], BMCs get 1 s per answer, 2 resends, cipher
        suite 3, 4 shared sockets and 256 BMCs at once."""
        self.assertEqual(self.load(GOOD).control, config.ControlConfig(1.0, 2, 3, 4, 256))

    def test_control_section(self) -> None:
        """[CONTROL] sets the per-answer timeout (fractions allowed), the
        resends, the cipher suite, the sockets and the parallelism."""
        cfg = self.load(
            GOOD + "\n[CONTROL]\nTIMEOUT = 0.5\nRETRIES = 0\nCIPHER_SUITE = 17\n"
            "SOCKETS = 8\nPARALLEL = 1000\n"
        )
        self.assertEqual(cfg.control, config.ControlConfig(0.5, 0, 17, 8, 1000))

    def test_keys_case_insensitive(self) -> None:
        """Keys are matched whatever their case."""
        cfg = self.load(GOOD.replace("USERNAME", "username"))
        self.assertEqual(cfg.api.username, "luna")


class BrokenConfigTests(ConfigTestsBase):
    def assertNames(self, message: str, section: str, key: str) -> None:
        self.assertIn(f"[{section}] {key}", message)

    def test_missing_file(self) -> None:
        """A file that does not exist is a ConfigError naming the path."""
        missing = self.folder / "nope.ini"
        exc = self.assertRaises(ConfigError, config.load, missing)
        self.assertIn(str(missing), str(exc))

    def test_unparsable_file(self) -> None:
        """Text that is not an ini is a ConfigError, not a configparser error."""
        message = self.broken("USERNAME = luna\n")
        self.assertIn("cannot parse", message)

    def test_missing_username(self) -> None:
        """Without [API] USERNAME the error names that section and key."""
        message = self.broken(_replace(GOOD, "API", "USERNAME", None))
        self.assertEqual(message, "[API] USERNAME: required key is missing")

    def test_empty_username(self) -> None:
        """An empty USERNAME is refused, naming [API] USERNAME."""
        self.assertNames(self.broken(_replace(GOOD, "API", "USERNAME", "")), "API", "USERNAME")

    def test_missing_database(self) -> None:
        """[DATABASE] DATABASE is required."""
        self.assertEqual(
            self.broken(_replace(GOOD, "DATABASE", "DATABASE", None)),
            "[DATABASE] DATABASE: required key is missing",
        )

    def test_short_secret_key(self) -> None:
        """A SECRET_KEY under 16 characters is refused, naming it."""
        self.assertNames(
            self.broken(_replace(GOOD, "API", "SECRET_KEY", "short")), "API", "SECRET_KEY"
        )

    def test_bad_expiry(self) -> None:
        """EXPIRY that is not a positive duration names [API] EXPIRY and the value."""
        for text in ("soon", "1y", "0", "-5m", "1h30m"):
            message = self.broken(_replace(GOOD, "API", "EXPIRY", text))
            self.assertNames(message, "API", "EXPIRY")
            self.assertIn(repr(text), message)

    def test_bad_endpoint(self) -> None:
        """ENDPOINT without a usable port names [API] ENDPOINT."""
        for text in ("localhost", "localhost:http", "1.2.3.4:70000", "1.2.3.4:"):
            message = self.broken(_replace(GOOD, "API", "ENDPOINT", text))
            self.assertNames(message, "API", "ENDPOINT")
            self.assertIn(repr(text), message)

    def test_bad_protocol(self) -> None:
        """PROTOCOL other than http/https names [API] PROTOCOL."""
        self.assertNames(
            self.broken(_replace(GOOD, "API", "PROTOCOL", "gopher")), "API", "PROTOCOL"
        )

    def test_unknown_key_in_known_section(self) -> None:
        """A key luna2d does not know in a section it does (a typo) is refused,
        naming the section and the key."""
        message = self.broken(_replace(GOOD, "API", "EXPIRE", "1h"))
        self.assertTrue(message.startswith("[API] EXPIRE: unknown key"), message)
        message = self.broken(_replace(GOOD, "DATABASE", "DATABSE", "x.db"))
        self.assertTrue(message.startswith("[DATABASE] DATABSE: unknown key"), message)

    def test_unknown_driver(self) -> None:
        """A DRIVER other than SQLite3 names [DATABASE] DRIVER."""
        message = self.broken(_replace(GOOD, "DATABASE", "DRIVER", "mysql"))
        self.assertEqual(message, "[DATABASE] DRIVER: only SQLite3 is supported")

    def test_driver_spellings(self) -> None:
        """sqlite, sqlite3 and SQLite3 all mean the one supported driver."""
        for text in ("sqlite", "sqlite3", "SQLITE3"):
            self.assertEqual(
                self.load(_replace(GOOD, "DATABASE", "DRIVER", text)).database.driver, "SQLite3"
            )

    def test_bad_synchronous(self) -> None:
        """SYNCHRONOUS other than OFF/NORMAL/FULL/EXTRA names [DATABASE] SYNCHRONOUS."""
        self.assertNames(
            self.broken(_replace(GOOD, "DATABASE", "SYNCHRONOUS", "fast")),
            "DATABASE",
            "SYNCHRONOUS",
        )

    def test_bad_bool(self) -> None:
        """A boolean that is not yes/no names the section and key it sits in."""
        message = self.broken(GOOD + "\n[BOOTSTRAP]\nENABLED = perhaps\n")
        self.assertNames(message, "BOOTSTRAP", "ENABLED")
        self.assertIn("'perhaps'", message)
        message = self.broken(GOOD + "\n[DHCP]\nENABLED = 2\n")
        self.assertNames(message, "DHCP", "ENABLED")

    def test_bad_control_values(self) -> None:
        """Every [CONTROL] key out of range names itself and the value."""
        cases = [
            ("TIMEOUT", "0"),
            ("TIMEOUT", "soon"),
            ("TIMEOUT", "61"),
            ("TIMEOUT", "nan"),
            ("RETRIES", "-1"),
            ("RETRIES", "11"),
            ("RETRIES", "two"),
            ("CIPHER_SUITE", "2"),
            ("CIPHER_SUITE", "x"),
            ("SOCKETS", "0"),
            ("SOCKETS", "65"),
            ("PARALLEL", "0"),
            ("PARALLEL", "5000"),
        ]
        for key, value in cases:
            message = self.broken(GOOD + f"\n[CONTROL]\n{key} = {value}\n")
            self.assertNames(message, "CONTROL", key)
            self.assertIn(
                value if key == "CIPHER_SUITE" and value.isdigit() else repr(value), message
            )

    def test_bad_controller_ip(self) -> None:
        """CONTROLLER_IP that is not an address names [BOOTSTRAP] CONTROLLER_IP."""
        self.assertNames(
            self.broken(GOOD + "\n[BOOTSTRAP]\nCONTROLLER_IP = 10.1.2\n"),
            "BOOTSTRAP",
            "CONTROLLER_IP",
        )

    def test_bad_controller_name(self) -> None:
        """CONTROLLER that is not a host name names [BOOTSTRAP] CONTROLLER."""
        self.assertNames(
            self.broken(GOOD + "\n[BOOTSTRAP]\nCONTROLLER = Bad Name\n"), "BOOTSTRAP", "CONTROLLER"
        )

    def test_bad_cluster_name(self) -> None:
        """CLUSTER, the sample cluster's name, follows the object-name rule:
        empty or upper-case names name [BOOTSTRAP] CLUSTER and the value."""
        for value in ('""', "My Cluster", "-x"):
            message = self.broken(GOOD + f"\n[BOOTSTRAP]\nCLUSTER = {value}\n")
            self.assertNames(message, "BOOTSTRAP", "CLUSTER")
            self.assertIn(repr(value.strip('"')), message)

    def test_bad_log_level(self) -> None:
        """An unknown LEVEL names [LOGGER] LEVEL."""
        self.assertNames(self.broken(GOOD + "\n[LOGGER]\nLEVEL = chatty\n"), "LOGGER", "LEVEL")

    def test_empty_path(self) -> None:
        """An empty KEYFILE is refused rather than taken as the ini's folder."""
        self.assertNames(self.broken(_replace(GOOD, "FILES", "KEYFILE", "")), "FILES", "KEYFILE")


class ParserTests(unittest.TestCase):
    def test_parse_duration(self) -> None:
        """parse_duration turns units into seconds and names ``where`` on error."""
        self.assertEqual(config.parse_duration("1w", "x"), 604800)
        self.assertEqual(config.parse_duration(" 15 m ", "x"), 900)
        exc = self.assertRaises(ConfigError, config.parse_duration, "", "[API] EXPIRY")
        self.assertTrue(str(exc).startswith("[API] EXPIRY: "))

    def test_parse_bool(self) -> None:
        """parse_bool knows yes/no, true/false, on/off, 1/0 in any case."""
        for text in ("yes", "TRUE", "On", "1", "y"):
            self.assertIs(config.parse_bool(text, "x"), True)
        for text in ("no", "False", "OFF", "0", "n"):
            self.assertIs(config.parse_bool(text, "x"), False)
        self.assertRaises(ConfigError, config.parse_bool, "maybe", "x")

    def test_parse_endpoint(self) -> None:
        """parse_endpoint splits host and port and checks the port range."""
        self.assertEqual(config.parse_endpoint("0.0.0.0:0", "x"), ("0.0.0.0", 0))
        self.assertEqual(config.parse_endpoint("example.org:65535", "x"), ("example.org", 65535))
        self.assertRaises(ConfigError, config.parse_endpoint, "example.org:65536", "x")
