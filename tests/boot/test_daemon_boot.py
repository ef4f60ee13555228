"""The real daemon (``twistd luna2d``) on loopback, spoken to by curl as iPXE
and the installer would: boot scripts whose kernel URL curl then fetches,
/files with Range requests and raw headers, tarballs refused without a token,
path escapes sent verbatim (``--path-as-is``), /boot/install served to the
node's own address (a node given 127.0.0.1) and refused to another's, and
the install script itself run by bash against the daemon: torrent failing
over to HTTP, the tarball unpacked, pre/part/post scripts, secrets, BMC
commands (ipmitool replaced by a recorder, so this machine's BMC is never
touched), system information and states reported back."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

from twisted.internet.utils import getProcessOutputAndValue

from tests.boot.support import INITRD, KERNEL, MAC, TARBALL
from tests.integration.test_daemon import Daemon, DaemonCase, make_folder
from tests.support import env

PAYLOAD = os.urandom(100_000)
CURL = "/usr/bin/curl"

STUBS = {
    "dmidecode": '#!/bin/sh\ncase "$2" in system-manufacturer) echo "ACME Computers";; '
    'system-serial-number) echo "SN-12345";; esac\nexit 0\n',
    # Records every call; for ``exec FILE`` also the file's mode and lines.
    "ipmitool": '#!/bin/sh\necho "$*" >> "$IPMI_LOG"\n'
    'if [ "$1" = exec ]; then\n'
    '  echo "mode $(stat -c %a "$2")" >> "$IPMI_LOG"\n'
    '  sed "s/^/file: /" "$2" >> "$IPMI_LOG"\n'
    "fi\n"
    'if [ "$1 $2" = "user list" ]; then\n'
    '  echo "ID  Name   Callin  Link Auth  IPMI Msg   Channel Priv Limit"\n'
    '  echo "1          true    false      false      NO ACCESS"\n'
    '  echo "2   ADMIN  false   false      true       ADMINISTRATOR"\n'
    '  echo "3   luna   true    true       true       ADMINISTRATOR"\n'
    "fi\nexit 0\n",
    "modprobe": "#!/bin/sh\nexit 0\n",
}


def image_tarball() -> bytes:
    """A small root filesystem as a gzipped tarball."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data, mode in (
            ("etc/os-release", b'NAME="Luna Test"\n', 0o644),
            ("bin/hello", b"#!/bin/sh\necho hello\n", 0o755),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        for folder in ("root", "etc"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
    return buffer.getvalue()


class BootDaemonTests(DaemonCase):
    async def start(self) -> tuple[Daemon, str]:
        daemon = Daemon(self)
        await daemon.start()
        token = await daemon.token()
        files = daemon.folder / "var" / "files"
        files.mkdir(parents=True, exist_ok=True)
        (files / KERNEL).write_bytes(PAYLOAD)
        (files / INITRD).write_bytes(PAYLOAD[::-1])
        (files / TARBALL).write_bytes(image_tarball())
        (daemon.folder / "var" / "outside.tar").write_bytes(b"outside")
        await self.ok(
            daemon,
            token,
            "osimage",
            "compute",
            {"kernelfile": KERNEL, "initrdfile": INITRD, "imagefile": TARBALL},
        )
        return daemon, token

    async def ok(self, daemon: Daemon, token: str, kind: str, name: str, fields: dict) -> None:
        code, body = await daemon.call(
            "POST", f"/config/{kind}/{name}", {"config": {kind: {name: fields}}}, token=token
        )
        self.assertIn(code, (201, 204), body)

    async def curl(self, *args: str) -> tuple[bytes, bytes, int]:
        return await getProcessOutputAndValue(CURL, ["-s", "-S", *args], env={})

    async def test_boot_chain(self) -> None:
        """curl as iPXE: /boot is an iPXE menu; the node's script names the
        controller as reached (127.0.0.1 and the daemon's port) and its
        kernel and initrd URLs give the files, without a token."""
        daemon, token = await self.start()
        await self.ok(daemon, token, "node", "node001", {"macaddr": MAC})
        out, err, code = await self.curl(daemon.url + "/boot")
        self.assertEqual(code, 0, err)
        self.assertTrue(out.startswith(b"#!ipxe\n"))
        out, err, code = await self.curl(f"{daemon.url}/boot/search/mac/{MAC}")
        script = out.decode()
        self.assertIn(f"luna.url={daemon.url} luna.node=node001 ", script)
        urls = [
            line.split()[3] for line in script.splitlines() if line.startswith("imgfetch --name")
        ]
        self.assertEqual(urls, [f"{daemon.url}/files/{KERNEL}", f"{daemon.url}/files/{INITRD}"])
        out, err, code = await self.curl("-f", urls[0])
        self.assertEqual((code, out), (0, PAYLOAD))
        out, err, code = await self.curl("-f", urls[1])
        self.assertEqual((code, out), (0, PAYLOAD[::-1]))

    async def test_files_range_and_refusals(self) -> None:
        """curl -r gets exactly the asked bytes (206); a tarball is 401
        without a token and 200 with one, with no Content-Encoding; path
        escapes sent as they are are 404."""
        daemon, token = await self.start()
        url = f"{daemon.url}/files/{KERNEL}"
        for byte_range, expected in (
            ("0-99", PAYLOAD[:100]),
            ("1000-1999", PAYLOAD[1000:2000]),
            ("99000-", PAYLOAD[99000:]),
            ("-10", PAYLOAD[-10:]),
        ):
            out, err, code = await self.curl("-f", "-r", byte_range, url)
            self.assertEqual((code, out), (0, expected), (byte_range, err))
        out, _, _ = await self.curl("-o", "/dev/null", "-D", "-", "-r", "0-99", url)
        self.assertIn(b"HTTP/1.1 206", out)
        self.assertIn(f"Content-Range: bytes 0-99/{len(PAYLOAD)}".encode(), out)

        out, _, _ = await self.curl(
            "-o", "/dev/null", "-w", "%{http_code}", f"{daemon.url}/files/{TARBALL}"
        )
        self.assertEqual(out, b"401")
        out, _, _ = await self.curl(
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-H",
            f"x-access-tokens: {token}",
            f"{daemon.url}/files/{TARBALL}",
        )
        self.assertIn(b"HTTP/1.1 200", out)
        self.assertNotIn(b"content-encoding", out.lower())

        for path in (
            "/files/../outside.tar",
            "/files/..%2Foutside.tar",
            "/files/%2e%2e%2Foutside.tar",
            "/files/../../var/outside.tar",
            "/files/./../outside.tar",
        ):
            out, _, _ = await self.curl(
                "--path-as-is",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                f"x-access-tokens: {token}",
                daemon.url + path,
            )
            self.assertEqual(out, b"404", path)

    async def loopback_node(self, daemon: Daemon, token: str) -> None:
        """node001's provisioning interface at 127.0.0.1, armed by the admin."""
        await self.ok(daemon, token, "network", "loop", {"network": "127.0.0.0/8"})
        await self.ok(
            daemon,
            token,
            "node",
            "node001",
            {"interfaces": [{"interface": "BOOTIF", "network": "loop", "ipaddress": "127.0.0.1"}]},
        )
        code, body = await daemon.call("POST", "/config/node/node001/_arm", token=token)
        self.assertEqual(code, 204, body)

    async def test_install_own_address(self) -> None:
        """Over a real socket from 127.0.0.1: node001, given that address
        and armed, gets its install script without a token, once; node002's
        is 403; the second fetch is 403 until the admin arms it again."""
        daemon, token = await self.start()
        await self.loopback_node(daemon, token)
        out, _, _ = await self.curl(
            "-o", "/dev/null", "-w", "%{http_code}", f"{daemon.url}/boot/install/node002"
        )
        self.assertEqual(out, b"403")
        out, err, code = await self.curl("-f", f"{daemon.url}/boot/install/node001")
        self.assertEqual(code, 0, err)
        self.assertTrue(out.startswith(b"#!/bin/bash\n"))
        self.assertIn(f"export LUNA_URL={daemon.url}\n".encode(), out)
        out, _, _ = await self.curl("-w", "\n%{http_code}", f"{daemon.url}/boot/install/node001")
        self.assertTrue(out.endswith(b"\n403"), out)
        self.assertIn(b"not armed", out)

    async def run_install(self, daemon: Daemon, token: str) -> tuple[Path, str, int, Path]:
        """Fetch node001's install script from its own address and run it
        with bash into a scratch system root; (root, output, exit code, ipmitool log)."""
        await self.loopback_node(daemon, token)
        script, err, code = await self.curl("-f", f"{daemon.url}/boot/install/node001")
        self.assertEqual(code, 0, err)
        scratch = make_folder(self)
        stubs = scratch / "bin"
        stubs.mkdir()
        for name, text in STUBS.items():
            (stubs / name).write_text(text)
            (stubs / name).chmod(0o755)
        (scratch / "install.sh").write_bytes(script)
        env = {
            "PATH": f"{stubs}:/usr/local/bin:/usr/bin:/bin",
            "LUNA_SYSTEMROOT": str(scratch / "sysroot"),
            "LUNA_TMP": str(scratch / "lunatmp"),
            "IPMI_LOG": str(scratch / "ipmi.log"),
            "HOME": str(scratch),
        }
        out, err, code = await getProcessOutputAndValue(
            "/bin/bash", [str(scratch / "install.sh")], env=env, path=str(scratch)
        )
        return scratch / "sysroot", (out + err).decode(errors="replace"), code, scratch / "ipmi.log"

    async def test_install_script_runs(self) -> None:
        """The install script, run by bash against the daemon: BitTorrent
        is not possible (the osimage has no torrent) so it falls back to
        HTTP with its token and unpacks the tarball; the prescript,
        partscript and postscript run in order; secrets land with mode 0600;
        the hostname is written; the BMC gets its address, user and password;
        vendor and asset tag reach the node; the last state is installer.ok."""
        daemon, token = await self.start()
        await self.ok(
            daemon,
            token,
            "group",
            "compute",
            {
                "prescript": 'echo pre >> "$LUNA_TMP/../order"\n',
                "partscript": 'echo part >> "$LUNA_TMP/../order"\nmkdir -p "$_SYSTEMROOT"\n',
                "postscript": (
                    'test -x "$_SYSTEMROOT/bin/hello" && echo post >> "$LUNA_TMP/../order"\n'
                ),
            },
        )
        await self.ok(
            daemon,
            token,
            "bmcsetup",
            "compute",
            {"password": "bmc-pass", "unmanaged_bmc_users": "disable"},
        )
        code, body = await daemon.call(
            "POST",
            "/config/secrets/node/node001",
            env(
                "secrets",
                "node",
                {
                    "node001": [
                        {
                            "secretname": "key",
                            "content": "SECRET-KEY",
                            "path": "/etc/luna/key.pem",
                        }
                    ]
                },
            ),
            token=token,
        )
        self.assertEqual(code, 201, body)

        root, output, code, ipmi_log = await self.run_install(daemon, token)
        self.assertEqual(code, 0, output)
        self.assertIn("Luna2: provisioning by torrent failed", output)
        self.assertEqual((root / "etc" / "os-release").read_text(), 'NAME="Luna Test"\n')
        self.assertTrue(os.access(root / "bin" / "hello", os.X_OK))
        self.assertTrue((root.parent / "order").exists(), output)
        self.assertEqual((root.parent / "order").read_text(), "pre\npart\npost\n")
        self.assertEqual((root / "etc" / "hostname").read_text(), "node001\n")
        key = root / "etc" / "luna" / "key.pem"
        self.assertEqual(key.read_bytes(), b"SECRET-KEY")  # byte for byte: no line break added
        self.assertEqual(stat.S_IMODE(key.stat().st_mode), 0o600)
        self.assertFalse((root.parent / "lunatmp" / "prescript.sh").exists())

        calls = ipmi_log.read_text().splitlines()
        for expected in (
            "lan set 1 ipaddr 10.148.0.1",
            "lan set 1 netmask 255.255.0.0",
            "lan set 1 defgw ipaddr 10.148.255.254",
            "user set name 3 luna",
            "file: user set password 3 'bmc-pass'",
            "mode 600",
            "user enable 3",
            "user disable 2",
        ):
            self.assertIn(expected, calls)
        self.assertNotIn("user disable 3", calls)
        # The password only ever in the command file, which is gone after.
        self.assertEqual(
            [call for call in calls if "bmc-pass" in call], ["file: user set password 3 'bmc-pass'"]
        )
        (command_file,) = [call.split(" ", 1)[1] for call in calls if call.startswith("exec ")]
        self.assertFalse(os.path.exists(command_file), command_file)

        code, body = await daemon.call("GET", "/monitor/node/node001")
        self.assertEqual(
            (code, body),
            (
                200,
                {
                    "monitor": {
                        "status": {
                            "node001": {
                                "status": "Luna installer: No errors",
                                "state": "installer.ok",
                            }
                        }
                    }
                },
            ),
        )
        node = (await daemon.get("/config/node/node001", token))["config"]["node"]["node001"]
        self.assertEqual((node["vendor"], node["assettag"]), ("ACME Computers", "SN-12345"))

    async def test_install_failure_reported(self) -> None:
        """With the tarball gone neither method can provision: the script
        exits non-zero and the node's state becomes installer.error, which
        /monitor answers with 500."""
        daemon, token = await self.start()
        (daemon.folder / "var" / "files" / TARBALL).unlink()
        _, output, code, _ = await self.run_install(daemon, token)
        self.assertEqual(code, 1, output)
        self.assertIn("could not provision osimage compute", output)
        code, body = await daemon.call("GET", "/monitor/node/node001")
        self.assertEqual(code, 500)
        self.assertEqual(body["monitor"]["status"]["node001"]["state"], "installer.error")

    async def test_monitor_and_service_endpoints(self) -> None:
        """The live daemon's own health: luna2 answers OK (its database
        through the adbapi thread pool); dhcp and dns, off in this ini, say
        so; a reload re-reads the templates (admin token)."""
        daemon, token = await self.start()
        self.assertEqual(
            await daemon.call("GET", "/monitor/service/luna2"),
            (200, {"monitor": {"service": {"luna2": "OK"}}}),
        )
        code, body = await daemon.call("GET", "/monitor/service/dhcp")
        self.assertEqual(code, 200)
        self.assertIn("not enabled", body["monitor"]["service"]["dhcp"])
        self.assertEqual((await daemon.call("GET", "/service/luna2/reload"))[0], 401)
        code, body = await daemon.call("GET", "/service/luna2/reload", token=token)
        self.assertEqual(code, 200)
        self.assertIn("reloaded", body["service"]["luna2"])
