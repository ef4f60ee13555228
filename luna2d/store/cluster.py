# -*- test-case-name: tests.test_objects -*-
"""The cluster: the one object of the singleton kind, changed through
``/config/cluster`` (controllers come from the ini file, not the API)."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid, NotFound
from luna2d.model.fields import coerce
from luna2d.model.kinds import CLUSTER, kinds_where
from luna2d.store.body import OUTPUT_ONLY
from luna2d.store.state import Tx


def update_cluster(tx: Tx, raw: Any) -> None:
    """Set the cluster's fields from ``raw``."""
    cluster = tx.singleton(CLUSTER.name)
    if cluster is None:
        raise NotFound("the cluster is not initialised")
    if not isinstance(raw, dict):
        raise Invalid("the cluster must be a JSON object of fields")
    # The cluster view shows each controller under its name.
    shown = {o.name for k in kinds_where(lambda k: k.infra) for o in tx.all(k.name)}
    mine = tx.edit(cluster)
    for key, value in raw.items():
        if key in shown or key.startswith("controller"):
            raise Invalid(f"{key}: controllers are configured in the ini file, not through the API")
        if key == "name" or key in OUTPUT_ONLY:
            if key == "name" and value not in (None, cluster.name):
                raise Invalid("name: the cluster name cannot be changed")
            continue
        f = CLUSTER.field(key)
        if f is None:
            raise Invalid(f"{key}: unknown field for cluster")
        value = coerce(f, value, key)
        if value is None:
            mine.data.pop(f.name, None)
        else:
            mine.data[f.name] = value
