# -*- test-case-name: tests.dhcp.test_leases -*-
"""The DHCP server's dynamic-range leases on disk (table ``dhcp_lease``).

The DHCP policy keeps the lease table in memory and hands back every change;
these functions load the table at start and write changes through the
store's adbapi pool, so they never block the reactor. Each ``apply`` is one
transaction, so a burst of changes costs one commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet import defer


@dataclass(frozen=True)
class LeaseRecord:
    """One row of ``dhcp_lease``."""

    address: str
    mac: str
    state: str
    expires: float
    hostname: str | None = None


class LeaseLike(Protocol):
    @property
    def address(self) -> str: ...
    @property
    def mac(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def expires(self) -> float: ...
    @property
    def hostname(self) -> str | None: ...


class ChangeLike(Protocol):
    @property
    def address(self) -> str: ...
    @property
    def lease(self) -> LeaseLike | None: ...


def load(pool: Any) -> defer.Deferred[list[LeaseRecord]]:
    """Every lease row, as LeaseRecords ordered by address (a Deferred)."""

    def query(cursor: Any) -> list[LeaseRecord]:
        rows = cursor.execute(
            "SELECT address, mac, state, expires, hostname FROM dhcp_lease ORDER BY address"
        ).fetchall()
        return [LeaseRecord(a, m, s, float(e), h) for a, m, s, e, h in rows]

    done: defer.Deferred[list[LeaseRecord]] = pool.runInteraction(query)
    return done


def apply(pool: Any, changes: Iterable[ChangeLike]) -> defer.Deferred[int]:
    """Write lease changes in order, in one transaction: a change with a
    lease replaces the row of its address, one without removes it. Fires
    with the number of changes written."""
    rows: list[tuple[str, tuple[str, str, str, float, str | None] | None]] = []
    for change in changes:
        lease = change.lease
        if lease is None:
            rows.append((change.address, None))
        else:
            rows.append(
                (
                    change.address,
                    (lease.address, lease.mac, lease.state, float(lease.expires), lease.hostname),
                )
            )

    def write(cursor: Any) -> int:
        for address, row in rows:
            if row is None:
                cursor.execute("DELETE FROM dhcp_lease WHERE address = ?", (address,))
            else:
                cursor.execute(
                    "INSERT INTO dhcp_lease (address, mac, state, expires, hostname) "
                    "VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(address) DO UPDATE SET mac = excluded.mac, "
                    "state = excluded.state, "
                    "expires = excluded.expires, hostname = excluded.hostname",
                    row,
                )
        return len(rows)

    written: defer.Deferred[int] = pool.runInteraction(write)
    return written
