# -*- test-case-name: tests.test_store,tests.test_objects -*-
"""First start: the cluster singleton and this controller always; with
[BOOTSTRAP] ENABLED a small sample cluster to explore (three networks, a
BMC setup, an OS image, a group and node001-node004), built through the
same write machinery the API uses."""

from __future__ import annotations

import secrets
from typing import Any

from luna2d.store import objects
from luna2d.store.state import Tx

SAMPLE_NETWORKS = (
    ("cluster", "10.141.0.0/16", "Default cluster network", True),
    ("ipmi", "10.148.0.0/16", "Default OOB network", False),
    ("ib", "10.149.0.0/16", "Default high-speed interconnect network", False),
)


def seed(tx: Tx, config: Any) -> None:
    """Fill an empty store; everything in one write."""
    cluster = tx.create("cluster", config.cluster_name)
    cluster.data.update(
        {
            "technical_contacts": "root@localhost",
            "provision_method": "torrent",
            "provision_fallback": "http",
            "debug": False,
            "domain": "cluster",
        }
    )
    controller: dict[str, Any] = {"luna_config": str(config.path)}
    objects.upsert(tx, "controller", config.controller_name, {"status": "primary", **controller})
    if not config.bootstrap:
        return
    controller_ip = config.controller_ip or "10.141.255.254"
    for name, cidr, comment, dhcp in SAMPLE_NETWORKS:
        base = cidr.split(".")[:2]
        server = controller_ip if name == "cluster" else f"{base[0]}.{base[1]}.255.254"
        body: dict[str, Any] = {
            "network": cidr,
            "comment": comment,
            "dhcp": dhcp,
            "nameserver_ip": server,
            "ns_hostname": f"{config.controller_name}.{name}",
            "gateway": server,
        }
        if dhcp:
            body.update(
                {
                    "dhcp_range_begin": f"{base[0]}.{base[1]}.0.200",
                    "dhcp_range_end": f"{base[0]}.{base[1]}.0.253",
                }
            )
        objects.upsert(tx, "network", name, body)
    objects.upsert(
        tx, "controller", config.controller_name, {"network": "cluster", "ipaddress": controller_ip}
    )
    tx.edit(cluster).data["ntp_server"] = controller_ip
    objects.upsert(
        tx,
        "bmcsetup",
        "compute",
        {
            "username": "luna",
            "password": secrets.token_urlsafe(12),
            "userid": 3,
            "mgmtchannel": 1,
            "netchannel": 1,
            "comment": "Sample BMC setup (random password)",
            "unmanaged_bmc_users": "skip",
        },
    )
    objects.upsert(
        tx,
        "osimage",
        "compute",
        {
            "path": str(config.files.image_directory / "compute"),
            "distribution": "redhat",
            "kernelfile": None,
            "initrdfile": None,
            "imagefile": None,
            "dracutmodules": "luna,-i18n,-plymouth",
            "kernelmodules": "ipmi_devintf,ipmi_si,ipmi_msghandler",
            "grab_exclude": ["/proc/*", "/sys/*", "/dev/*", "/tmp/*", "/var/log/*"],
            "grab_filesystems": ["/", "/boot"],
            "comment": "Sample OS image",
        },
    )
    objects.upsert(
        tx,
        "group",
        "compute",
        {
            "osimage": "compute",
            "bmcsetup": True,
            "bmcsetupname": "compute",
            "domain": "cluster",
            "netboot": True,
            "bootmenu": False,
            "localinstall": False,
            "provision_method": "torrent",
            "provision_fallback": "http",
            "comment": "Sample compute group",
            "interfaces": [
                {"interface": "BOOTIF", "network": "cluster"},
                {"interface": "BMC", "network": "ipmi"},
                {"interface": "ib0", "network": "ib"},
            ],
        },
    )
    for number in range(1, 5):
        objects.upsert(tx, "node", f"node{number:03d}", {"group": "compute"})
