"""The set-up the real-daemon DHCP tests share: the daemon's ini with
``[DHCP] ENABLED = yes`` on a chosen interface, and a lab (a veth pair into
a namespace) with the daemon serving it, one network with a dynamic range,
one group and one node made over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.dhcp.netns import Lab
from tests.integration.test_daemon import Daemon, DaemonCase, ini_text, make_folder


def dhcp_ini(port: int, interfaces: str) -> str:
    text = ini_text(port)
    plain = "[DHCP]\nENABLED = no\n"
    assert plain in text
    return text.replace(
        plain, f"[DHCP]\nENABLED = yes\nINTERFACES = {interfaces}\nLEASE_TIME = 30m\n"
    )


async def post_object(
    case: DaemonCase, daemon: Daemon, token: str, kind: str, name: str, body: dict[str, Any]
) -> None:
    """POST /config/<kind>/<name>; the answer must be 201 or 204."""
    code, answer = await daemon.call(
        "POST", f"/config/{kind}/{name}", {"config": {kind: {name: body}}}, token=token
    )
    case.assertIn(code, (201, 204), f"{kind} {name}: {answer}")


async def lab_with_node(
    case: DaemonCase, lab_mac: str, node: str, node_mac: str, group: dict[str, Any]
) -> tuple[Lab, Daemon, str]:
    """A lab whose client end has ``lab_mac``, the daemon serving DHCP on its
    host end, network ``lab`` (range .100-.110, gateway .1, nameserver .2),
    group ``labgroup`` (``group`` plus a BOOTIF on ``lab``) and ``node`` at
    .21 with ``node_mac``. Returns the lab, the daemon and an admin token."""
    lab = await Lab(case, make_folder(case)).create(lab_mac)
    daemon = Daemon(case, ini="")
    daemon.ini.write_text(dhcp_ini(daemon.port, lab.host_if))
    await daemon.start()
    token = await daemon.token()
    network = {
        "network": lab.network,
        "gateway": lab.address(1),
        "nameserver_ip": lab.address(2),
        "dhcp": True,
        "dhcp_range_begin": lab.address(100),
        "dhcp_range_end": lab.address(110),
    }
    await post_object(case, daemon, token, "network", "lab", network)
    group_body = {**group, "interfaces": [{"interface": "BOOTIF", "network": "lab"}]}
    await post_object(case, daemon, token, "group", "labgroup", group_body)
    bootif = {"interface": "BOOTIF", "ipaddress": lab.address(21), "macaddress": node_mac}
    await post_object(
        case, daemon, token, "node", node, {"group": "labgroup", "interfaces": [bootif]}
    )
    return lab, daemon, token
