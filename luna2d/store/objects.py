# -*- test-case-name: tests.test_objects -*-
"""The store's write functions for objects, gathered in one name space for
callers (``store.write(objects.upsert, ...)``). Each lives in the module of
its concern:

- ``body``: request bodies split by the kind table, names, lookups;
- ``generic``: create-or-update, rename, clone, delete, interface endpoints;
- ``interfaces``, ``templates``, ``single``: the interface modes (node
  interfaces, group templates, a single address);
- ``networks``: address checks and renumbering of networks;
- ``cluster``, ``secrets``, ``racks``, ``tags``: the kinds' own endpoints.

Importing this module registers every kind hook (``store/hooks.py``)."""

from __future__ import annotations

from luna2d.store.body import OUTPUT_ONLY, Body, check_name, require
from luna2d.store.cluster import update_cluster
from luna2d.store.generic import (
    NOT_CLONED,
    apply_body,
    clone,
    delete,
    delete_interface,
    put_interfaces,
    rename,
    upsert,
    users_of,
)
from luna2d.store.interfaces import IFACE_KEYS, put_multi_iface, set_boot_mac
from luna2d.store.networks import check_network, renumber
from luna2d.store.racks import (
    check_rack,
    clear_inventory,
    place_devices,
    update_inventory,
)
from luna2d.store.secrets import clone_secret, delete_secret, put_secrets, secret_path
from luna2d.store.single import put_single_iface
from luna2d.store.tags import delete_tag, put_tag
from luna2d.store.templates import put_template_iface

__all__ = [
    "IFACE_KEYS",
    "NOT_CLONED",
    "OUTPUT_ONLY",
    "Body",
    "apply_body",
    "check_name",
    "check_network",
    "check_rack",
    "clear_inventory",
    "clone",
    "clone_secret",
    "delete",
    "delete_interface",
    "delete_secret",
    "delete_tag",
    "place_devices",
    "put_group_iface",
    "put_interfaces",
    "put_multi_iface",
    "put_node_iface",
    "put_secrets",
    "put_single_iface",
    "put_tag",
    "put_template_iface",
    "rename",
    "renumber",
    "require",
    "secret_path",
    "set_boot_mac",
    "update_cluster",
    "update_inventory",
    "upsert",
    "users_of",
]

# The names these functions had before the interface modes were modules of
# their own; callers may use either.
put_node_iface = put_multi_iface
put_group_iface = put_template_iface
