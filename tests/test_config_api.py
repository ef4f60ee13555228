"""luna2d.config's [API] keys of the HTTP edge and TLS, and [WEBSERVER]:
defaults, sizes and durations, relative certificate paths, and the errors
that name the key."""

from __future__ import annotations

from pathlib import Path

from twisted.trial import unittest

from luna2d import config
from luna2d.errors import ConfigError

BASE = """\
[API]
USERNAME = luna
PASSWORD = luna-password
SECRET_KEY = 0123456789abcdef0123
{api}
[DATABASE]
DATABASE = db/luna.db
{tail}"""


class EdgeKeysTests(unittest.TestCase):
    def load(self, api: str = "", tail: str = "") -> config.Config:
        folder = Path(self.mktemp()).resolve()
        folder.mkdir(parents=True)
        ini = folder / "luna.ini"
        ini.write_text(BASE.format(api=api, tail=tail))
        return config.load(ini)

    def test_defaults(self) -> None:
        """Without the keys: 256 MiB of bodies, 5 min per request, 30 s of
        pause, plain HTTP, boot port 7051."""
        api = self.load().api
        self.assertEqual(
            (api.body_memory, api.body_timeout, api.body_idle_timeout), (256 << 20, 300, 30)
        )
        self.assertEqual(
            (api.protocol, api.certificate, api.certificate_key, api.boot_port),
            ("http", None, None, 7051),
        )

    def test_values(self) -> None:
        """Sizes in K/M/G, durations in s/m/h; certificate paths relative to
        the ini; [WEBSERVER] PORT."""
        cfg = self.load(
            "MAX_BODY_MEMORY = 1G\nBODY_TIMEOUT = 2m\nBODY_IDLE_TIMEOUT = 10s\nPROTOCOL = https\n"
            "SSL_CERTIFICATE = tls/cert.pem\nSSL_CERTIFICATE_KEY = /etc/key.pem\n",
            "[WEBSERVER]\nPORT = 8080\nPROTOCOL = http\n",
        )
        api = cfg.api
        self.assertEqual(
            (api.body_memory, api.body_timeout, api.body_idle_timeout), (1 << 30, 120, 10)
        )
        self.assertEqual(api.certificate, cfg.path.parent / "tls" / "cert.pem")
        self.assertEqual(api.certificate_key, Path("/etc/key.pem"))
        self.assertEqual(api.boot_port, 8080)

    def test_errors_name_the_key(self) -> None:
        """Each bad value is a ConfigError naming its key."""
        cases = [
            ("MAX_BODY_MEMORY = lots\n", "", "[API] MAX_BODY_MEMORY"),
            ("MAX_BODY_MEMORY = 16M\n", "", "[API] MAX_BODY_MEMORY: must be at least 64M"),
            ("BODY_TIMEOUT = 0\n", "", "[API] BODY_TIMEOUT"),
            ("BODY_IDLE_TIMEOUT = soon\n", "", "[API] BODY_IDLE_TIMEOUT"),
            ("PROTOCOL = https\n", "", "[API] SSL_CERTIFICATE: required"),
            ("", "[WEBSERVER]\nPORT = http\n", "[WEBSERVER] PORT"),
            ("", "[WEBSERVER]\nPROTOCOL = https\n", "[WEBSERVER] PROTOCOL"),
            ("", "[WEBSERVER]\nROOT = /srv\n", "[WEBSERVER] ROOT: unknown key"),
        ]
        for api, tail, expected in cases:
            with self.assertRaises(ConfigError) as caught:
                self.load(api, tail)
            self.assertIn(expected, str(caught.exception), (api, tail))
