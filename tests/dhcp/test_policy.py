"""The DHCP policy over a hand-built boot index and a Clock: fixed addresses
for known nodes, the dynamic range for unknown machines (offers, leases,
NAK, DECLINE, RELEASE, INFORM, expiry), options, reply destinations
(broadcast, unicast, relay), and the boot file by the spec's template
table and the firmware's architecture."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.policy import (
    Lease,
    Link,
    Outcome,
    Policy,
    Settings,
    boot_path,
)
from tests.dhcp.fakes import (
    KNOWN_MAC,
    SERVER,
    UNKNOWN_MAC,
    inbound,
    index,
    network,
    node,
    request,
)

OTHER_MAC = "02:00:00:00:00:98"
THIRD_MAC = "02:00:00:00:00:97"
IPXE = ((codec.USER_CLASS, b"iPXE"),)


def opts(outcome: Outcome) -> dict[int, bytes]:
    assert outcome.reply is not None
    return dict(outcome.reply.options)


class Base(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.index = index()
        self.policy = Policy(
            lambda: self.index, Settings(lease_time=3600, offer_hold=60, decline_hold=600)
        )

    def handle(
        self, kind: int, mac: str = KNOWN_MAC, options: tuple = (), **fields: Any
    ) -> Outcome | None:
        return self.policy.handle(
            inbound(request(kind, mac, options, **fields)), self.clock.seconds()
        )

    def answer(
        self, kind: int, mac: str = KNOWN_MAC, options: tuple = (), **fields: Any
    ) -> Outcome:
        outcome = self.handle(kind, mac, options, **fields)
        assert outcome is not None, "expected an answer"
        return outcome

    def dora(self, mac: str, options: tuple = ()) -> str:
        """DISCOVER, then REQUEST what was offered; the ACKed address."""
        offer = self.answer(codec.DISCOVER, mac, options)
        assert offer.reply is not None
        address = offer.reply.yiaddr
        ack = self.answer(
            codec.REQUEST,
            mac,
            options
            + (
                (codec.SERVER_ID, codec.addresses(SERVER)),
                (codec.REQUESTED_ADDRESS, codec.addresses(address)),
            ),
        )
        self.assertEqual(ack.event, "ack")
        return address


class KnownNodeTests(Base):
    def test_offer(self) -> None:
        """A known node's DISCOVER gets an OFFER of its fixed address with mask,
        broadcast, router, DNS, domain, hostname, NTP, lease time and T1/T2,
        the server identifier and next-server being the interface's address,
        broadcast to 255.255.255.255:68; nothing to persist."""
        outcome = self.answer(codec.DISCOVER)
        reply = outcome.reply
        assert reply is not None
        self.assertEqual(outcome.event, "offer")
        self.assertEqual(reply.op, codec.BOOTREPLY)
        self.assertEqual(reply.xid, 0x1234)
        self.assertEqual(reply.mac, KNOWN_MAC)
        self.assertEqual(reply.yiaddr, "10.141.0.1")
        self.assertEqual(reply.siaddr, SERVER)
        self.assertEqual(outcome.destination, ("255.255.255.255", 68))
        self.assertEqual(outcome.changes, ())
        options = opts(outcome)
        self.assertEqual(reply.options[0], (codec.MESSAGE_TYPE, bytes([codec.OFFER])))
        self.assertEqual(codec.read_address(options[codec.SERVER_ID]), SERVER)
        self.assertEqual(codec.read_address(options[codec.SUBNET_MASK]), "255.255.0.0")
        self.assertEqual(codec.read_address(options[codec.BROADCAST_ADDRESS]), "10.141.255.255")
        self.assertEqual(codec.read_addresses(options[codec.ROUTER]), (SERVER,))
        self.assertEqual(codec.read_addresses(options[codec.DNS_SERVERS]), (SERVER,))
        self.assertEqual(codec.read_addresses(options[codec.NTP_SERVERS]), ("10.141.255.250",))
        self.assertEqual(options[codec.DOMAIN_NAME], b"cluster")
        self.assertEqual(options[codec.HOSTNAME], b"node001")
        self.assertEqual(codec.read_u32(options[codec.LEASE_TIME]), 3600)
        self.assertEqual(codec.read_u32(options[codec.RENEWAL_TIME]), 1800)
        self.assertEqual(codec.read_u32(options[codec.REBINDING_TIME]), 3150)
        self.assertEqual(reply.file, b"")

    def test_ack_selecting(self) -> None:
        """A REQUEST naming this server and the fixed address is ACKed."""
        outcome = self.answer(
            codec.REQUEST,
            options=(
                (codec.SERVER_ID, codec.addresses(SERVER)),
                (codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.1")),
            ),
        )
        self.assertEqual(outcome.event, "ack")
        assert outcome.reply is not None
        self.assertEqual(outcome.reply.options[0], (codec.MESSAGE_TYPE, bytes([codec.ACK])))
        self.assertEqual(outcome.reply.yiaddr, "10.141.0.1")
        self.assertEqual(outcome.destination, ("255.255.255.255", 68))

    def test_other_server_chosen(self) -> None:
        """A REQUEST naming another server is not answered."""
        self.assertIsNone(
            self.handle(
                codec.REQUEST,
                options=(
                    (codec.SERVER_ID, codec.addresses("10.141.255.1")),
                    (codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.1")),
                ),
            )
        )

    def test_nak_wrong_address(self) -> None:
        """INIT-REBOOT for an address that is not the node's gets a broadcast
        NAK with the server identifier, no address and a message."""
        outcome = self.answer(
            codec.REQUEST, options=((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.9")),)
        )
        self.assertEqual(outcome.event, "nak")
        reply = outcome.reply
        assert reply is not None
        self.assertEqual(reply.options[0], (codec.MESSAGE_TYPE, bytes([codec.NAK])))
        self.assertEqual(reply.yiaddr, "0.0.0.0")
        self.assertEqual(codec.read_address(opts(outcome)[codec.SERVER_ID]), SERVER)
        self.assertIn(b"10.141.0.9", opts(outcome)[codec.MESSAGE])
        self.assertNotIn(codec.LEASE_TIME, opts(outcome))
        self.assertEqual(outcome.destination, ("255.255.255.255", 68))

    def test_renewing_unicast(self) -> None:
        """RENEWING (ciaddr set, no requested address) is ACKed to ciaddr:68;
        a renewal of a wrong address is NAKed by broadcast."""
        outcome = self.answer(codec.REQUEST, ciaddr="10.141.0.1")
        self.assertEqual(outcome.event, "ack")
        self.assertEqual(outcome.destination, ("10.141.0.1", 68))
        assert outcome.reply is not None
        self.assertEqual(outcome.reply.ciaddr, "10.141.0.1")
        nak = self.answer(codec.REQUEST, ciaddr="10.141.0.7")
        self.assertEqual(nak.event, "nak")
        self.assertEqual(nak.destination, ("255.255.255.255", 68))

    def test_served_without_dhcp_flag(self) -> None:
        """Known nodes are served on a network whose dhcp flag is off."""
        self.index = index(networks=[network(dhcp=False)])
        self.assertEqual(self.answer(codec.DISCOVER).event, "offer")

    def test_node_on_other_network_is_unknown(self) -> None:
        """A known MAC whose address is on another network is treated as
        unknown on this one: a dynamic address, not its fixed one."""
        self.index = index(
            nodes=[node(address="10.149.0.1", net="ib")],
            networks=[network(), network("ib", "10.149.0.0/16", controller=None)],
        )
        outcome = self.answer(codec.DISCOVER)
        assert outcome.reply is not None
        self.assertEqual(outcome.reply.yiaddr, "10.141.0.200")
        self.assertNotIn(codec.HOSTNAME, opts(outcome))

    def test_index_read_per_request(self) -> None:
        """A new index (an API change) shows in the next answer."""
        self.assertEqual(self.answer(codec.DISCOVER).reply.yiaddr, "10.141.0.1")  # type: ignore[union-attr]
        self.index = index(nodes=[node(address="10.141.0.77", name="node077")])
        outcome = self.answer(codec.DISCOVER)
        self.assertEqual(outcome.reply.yiaddr, "10.141.0.77")  # type: ignore[union-attr]
        self.assertEqual(opts(outcome)[codec.HOSTNAME], b"node077")

    def test_decline_of_fixed_address(self) -> None:
        """A node declining its fixed address is reported, changes nothing."""
        outcome = self.answer(
            codec.DECLINE,
            options=(
                (codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.1")),
                (codec.SERVER_ID, codec.addresses(SERVER)),
            ),
        )
        self.assertEqual(outcome.event, "decline")
        self.assertIsNone(outcome.reply)
        self.assertEqual(outcome.changes, ())
        self.assertIn("node001", outcome.detail)

    def test_no_gateway_no_domain(self) -> None:
        """Options without a value (no gateway, no domain, no NTP) are left out."""
        self.index = index(
            nodes=[node(gateway=None, domain=None)],
            networks=[network(gateway=None, domain=None, ntp=())],
        )
        options = opts(self.answer(codec.DISCOVER))
        for code in (codec.ROUTER, codec.DOMAIN_NAME, codec.NTP_SERVERS):
            self.assertNotIn(code, options)


class RelayTests(Base):
    def test_relayed_request(self) -> None:
        """A relayed DISCOVER (giaddr set) is answered to giaddr:67 with giaddr
        kept; the network is the one holding giaddr."""
        outcome = self.answer(codec.DISCOVER, giaddr="10.141.0.250", hops=1)
        assert outcome.reply is not None
        self.assertEqual(outcome.destination, ("10.141.0.250", 67))
        self.assertEqual(outcome.reply.giaddr, "10.141.0.250")
        self.assertEqual(outcome.reply.yiaddr, "10.141.0.1")

    def test_relayed_from_other_network(self) -> None:
        """The relay's network decides: a relay on 10.149/16 gets that
        network's range for unknown machines, and the unknown giaddr nothing."""
        self.index = index(
            networks=[
                network(),
                network(
                    "ib",
                    "10.149.0.0/16",
                    gateway="10.149.255.254",
                    begin="10.149.0.10",
                    end="10.149.0.20",
                    controller=None,
                    nameservers=(),
                ),
            ]
        )
        outcome = self.answer(codec.DISCOVER, UNKNOWN_MAC, giaddr="10.149.0.1")
        assert outcome.reply is not None
        self.assertEqual(outcome.reply.yiaddr, "10.149.0.10")
        self.assertEqual(codec.read_addresses(opts(outcome)[codec.ROUTER]), ("10.149.255.254",))
        self.assertIsNone(self.handle(codec.DISCOVER, UNKNOWN_MAC, giaddr="192.0.2.1"))

    def test_relayed_nak(self) -> None:
        """A NAK through a relay goes to giaddr:67 with the broadcast flag set."""
        outcome = self.answer(
            codec.REQUEST,
            giaddr="10.141.0.250",
            options=((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.9")),),
        )
        assert outcome.reply is not None
        self.assertEqual(outcome.event, "nak")
        self.assertEqual(outcome.destination, ("10.141.0.250", 67))
        self.assertTrue(outcome.reply.broadcast)

    def test_relay_agent_info_echoed(self) -> None:
        """Option 82 is echoed as the last option; option 61 is echoed too."""
        outcome = self.answer(
            codec.DISCOVER,
            giaddr="10.141.0.250",
            options=((codec.CLIENT_ID, b"\x01abcdef"), (codec.RELAY_AGENT_INFO, b"\x01\x03abc")),
        )
        assert outcome.reply is not None
        self.assertEqual(outcome.reply.options[-1], (codec.RELAY_AGENT_INFO, b"\x01\x03abc"))
        self.assertEqual(opts(outcome)[codec.CLIENT_ID], b"\x01abcdef")


class DynamicTests(Base):
    def test_offer_lowest_free(self) -> None:
        """An unknown machine is offered the lowest free address of the range,
        skipping addresses devices hold and reserved ones; no hostname."""
        self.index = index(
            networks=[network(begin="10.141.0.199", end="10.141.0.210")],
            taken=("10.141.0.199", "10.141.0.200"),
        )
        outcome = self.answer(codec.DISCOVER, UNKNOWN_MAC)
        assert outcome.reply is not None
        self.assertEqual(outcome.reply.yiaddr, "10.141.0.201")
        self.assertNotIn(codec.HOSTNAME, opts(outcome))
        self.assertEqual(opts(outcome)[codec.DOMAIN_NAME], b"cluster")
        self.assertEqual(outcome.changes, ())

    def test_gateway_in_range_skipped(self) -> None:
        """A gateway inside the range is never handed out."""
        self.index = index(networks=[network(gateway="10.141.0.200")])
        self.assertEqual(
            self.answer(codec.DISCOVER, UNKNOWN_MAC).reply.yiaddr,  # type: ignore[union-attr]
            "10.141.0.201",
        )

    def test_no_dhcp_no_answer(self) -> None:
        """Unknown machines on a network without dhcp get no answer at all."""
        self.index = index(networks=[network(dhcp=False)])
        self.assertIsNone(self.handle(codec.DISCOVER, UNKNOWN_MAC))
        self.assertIsNone(
            self.handle(
                codec.REQUEST,
                UNKNOWN_MAC,
                options=((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.200")),),
            )
        )

    def test_no_range_no_answer(self) -> None:
        """A network with dhcp on but no range has nothing to offer."""
        self.index = index(networks=[network(begin=None, end=None)])
        outcome = self.answer(codec.DISCOVER, UNKNOWN_MAC)
        self.assertEqual(outcome.event, "exhausted")
        self.assertIsNone(outcome.reply)

    def test_dora_binds_lease(self) -> None:
        """REQUEST of the offered address is ACKed and emits the lease (MAC,
        expiry now + lease time, client's hostname) for the store."""
        offer = self.answer(codec.DISCOVER, UNKNOWN_MAC)
        self.assertEqual(offer.reply.yiaddr, "10.141.0.200")  # type: ignore[union-attr]
        ack = self.answer(
            codec.REQUEST,
            UNKNOWN_MAC,
            options=(
                (codec.SERVER_ID, codec.addresses(SERVER)),
                (codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.200")),
                (codec.HOSTNAME, b"rescue"),
            ),
        )
        self.assertEqual(ack.event, "ack")
        self.assertEqual(ack.reply.yiaddr, "10.141.0.200")  # type: ignore[union-attr]
        lease = Lease("10.141.0.200", UNKNOWN_MAC, self.clock.seconds() + 3600, "bound", "rescue")
        self.assertEqual([(c.address, c.lease) for c in ack.changes], [("10.141.0.200", lease)])
        self.assertEqual(self.policy.leases["10.141.0.200"], lease)

    def test_offers_held_apart(self) -> None:
        """Two machines discovering at once are offered different addresses;
        an offer not taken up is released after offer_hold seconds."""
        first = self.answer(codec.DISCOVER, UNKNOWN_MAC).reply.yiaddr  # type: ignore[union-attr]
        second = self.answer(codec.DISCOVER, OTHER_MAC).reply.yiaddr  # type: ignore[union-attr]
        self.assertEqual((first, second), ("10.141.0.200", "10.141.0.201"))
        self.assertEqual(self.answer(codec.DISCOVER, UNKNOWN_MAC).reply.yiaddr, first)  # type: ignore[union-attr]
        self.clock.advance(61)
        self.assertEqual(self.answer(codec.DISCOVER, THIRD_MAC).reply.yiaddr, first)  # type: ignore[union-attr]

    def test_lease_kept_and_renewed(self) -> None:
        """A machine with a lease is offered the same address again, and a
        renewal extends the lease (a new change for the store)."""
        address = self.dora(UNKNOWN_MAC)
        self.dora(OTHER_MAC)
        self.clock.advance(1000)
        self.assertEqual(self.answer(codec.DISCOVER, UNKNOWN_MAC).reply.yiaddr, address)  # type: ignore[union-attr]
        renew = self.answer(codec.REQUEST, UNKNOWN_MAC, ciaddr=address)
        self.assertEqual(renew.event, "ack")
        self.assertEqual(renew.destination, (address, 68))
        self.assertEqual(renew.changes[0].lease.expires, self.clock.seconds() + 3600)  # type: ignore[union-attr]

    def test_leases_loaded(self) -> None:
        """Leases handed in (from the store) are honoured: the owner gets its
        address back, others do not get it while it is live."""
        expires = self.clock.seconds() + 500
        policy = Policy(lambda: self.index, Settings(), [Lease("10.141.0.200", OTHER_MAC, expires)])
        now = self.clock.seconds()
        self.assertEqual(
            policy.handle(inbound(request(codec.DISCOVER, UNKNOWN_MAC)), now).reply.yiaddr,  # type: ignore[union-attr]
            "10.141.0.201",
        )
        self.assertEqual(
            policy.handle(inbound(request(codec.DISCOVER, OTHER_MAC)), now).reply.yiaddr,  # type: ignore[union-attr]
            "10.141.0.200",
        )

    def test_bad_lease_rows_skipped(self) -> None:
        """Lease rows whose address is not a canonical dotted quad (a damaged
        table) are skipped at load; the range is served as if they were not
        there."""
        expires = self.clock.seconds() + 500
        rows = [
            Lease("10.141.0.200", OTHER_MAC, expires),
            Lease("10.141.0.201x", OTHER_MAC, expires),
            Lease("10.141.201", THIRD_MAC, expires),
            Lease("", THIRD_MAC, expires),
        ]
        policy = Policy(lambda: self.index, Settings(), rows)
        self.assertEqual(list(policy.leases), ["10.141.0.200"])
        outcome = policy.handle(inbound(request(codec.DISCOVER, UNKNOWN_MAC)), self.clock.seconds())
        self.assertEqual(outcome.reply.yiaddr, "10.141.0.201")  # type: ignore[union-attr]

    def test_expired_lease_reused_last(self) -> None:
        """An expired lease of another machine is reused only when no
        never-leased address is left, and then by replacing that row."""
        self.index = index(networks=[network(begin="10.141.0.200", end="10.141.0.201")])
        self.dora(UNKNOWN_MAC)
        self.clock.advance(3601)
        self.assertEqual(self.dora(OTHER_MAC), "10.141.0.201")
        self.assertEqual(self.dora(THIRD_MAC), "10.141.0.200")
        self.assertEqual(self.policy.leases["10.141.0.200"].mac, THIRD_MAC)
        self.assertEqual(self.policy.by_mac[UNKNOWN_MAC], set())

    def test_exhausted(self) -> None:
        """With every address leased, a new machine gets no offer."""
        self.index = index(networks=[network(begin="10.141.0.200", end="10.141.0.200")])
        self.dora(UNKNOWN_MAC)
        outcome = self.answer(codec.DISCOVER, OTHER_MAC)
        self.assertEqual(outcome.event, "exhausted")
        self.assertIsNone(outcome.reply)

    def test_requested_address(self) -> None:
        """An address the client asks for in DISCOVER is offered when free,
        and not when another machine holds it."""
        ask = ((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.202")),)
        self.assertEqual(self.dora(UNKNOWN_MAC, ask), "10.141.0.202")
        self.assertEqual(
            self.answer(codec.DISCOVER, OTHER_MAC, ask).reply.yiaddr,  # type: ignore[union-attr]
            "10.141.0.200",
        )

    def test_init_reboot(self) -> None:
        """INIT-REBOOT (requested address, no server identifier): the MAC's own
        lease is ACKed; an address luna2d knows is wrong for it (another
        machine's, outside the range, on another network, or a different one
        than the MAC holds) is NAKed; a free range address from a MAC luna2d
        has no record of gets no answer (RFC 2131 4.3.2) and binds nothing."""
        address = self.dora(UNKNOWN_MAC)
        self.assertEqual(
            self.answer(
                codec.REQUEST,
                UNKNOWN_MAC,
                options=((codec.REQUESTED_ADDRESS, codec.addresses(address)),),
            ).event,
            "ack",
        )
        self.assertEqual(
            self.answer(
                codec.REQUEST,
                OTHER_MAC,
                options=((codec.REQUESTED_ADDRESS, codec.addresses(address)),),
            ).event,
            "nak",
        )
        self.assertEqual(
            self.answer(
                codec.REQUEST,
                OTHER_MAC,
                options=((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.50")),),
            ).event,
            "nak",
        )
        self.assertEqual(
            self.answer(
                codec.REQUEST,
                OTHER_MAC,
                options=((codec.REQUESTED_ADDRESS, codec.addresses("192.168.1.5")),),
            ).event,
            "nak",
        )
        self.assertEqual(
            self.answer(
                codec.REQUEST,
                UNKNOWN_MAC,
                options=((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.203")),),
            ).event,
            "nak",
        )
        silent = self.answer(
            codec.REQUEST,
            OTHER_MAC,
            options=((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.203")),),
        )
        self.assertEqual((silent.event, silent.reply, silent.changes), ("unoffered", None, ()))
        self.assertNotIn("10.141.0.203", self.policy.leases)

    def test_request_moves_lease(self) -> None:
        """A machine whose leased address was since taken by a device is
        offered another; binding it gives up the first (a removal for the
        store)."""
        first = self.dora(UNKNOWN_MAC)
        self.index = index(taken=(first,))
        second = self.dora(UNKNOWN_MAC)
        self.assertNotEqual(second, first)
        self.assertNotIn(first, self.policy.leases)
        self.assertEqual(self.policy.by_mac[UNKNOWN_MAC], {second})

    def test_selecting_other_server_frees_offer(self) -> None:
        """A machine that picks another server's offer frees the one it was held."""
        offered = self.answer(codec.DISCOVER, UNKNOWN_MAC).reply.yiaddr  # type: ignore[union-attr]
        self.assertIsNone(
            self.handle(
                codec.REQUEST,
                UNKNOWN_MAC,
                options=(
                    (codec.SERVER_ID, codec.addresses("10.141.0.2")),
                    (codec.REQUESTED_ADDRESS, codec.addresses(offered)),
                ),
            )
        )
        self.assertEqual(self.answer(codec.DISCOVER, OTHER_MAC).reply.yiaddr, offered)  # type: ignore[union-attr]

    def test_decline(self) -> None:
        """DECLINE marks the address declined for decline_hold seconds (a
        change for the store); meanwhile nobody is offered it: in this
        two-address range the second machine takes over the first one's held
        offer (at most half a range is held) rather than the declined one."""
        self.index = index(networks=[network(begin="10.141.0.200", end="10.141.0.201")])
        address = self.dora(UNKNOWN_MAC)
        outcome = self.answer(
            codec.DECLINE,
            UNKNOWN_MAC,
            options=(
                (codec.REQUESTED_ADDRESS, codec.addresses(address)),
                (codec.SERVER_ID, codec.addresses(SERVER)),
            ),
        )
        self.assertEqual(outcome.event, "decline")
        self.assertIsNone(outcome.reply)
        self.assertEqual(outcome.changes[0].lease.state, "declined")  # type: ignore[union-attr]
        self.assertEqual(self.answer(codec.DISCOVER, UNKNOWN_MAC).reply.yiaddr, "10.141.0.201")  # type: ignore[union-attr]
        self.assertEqual(self.answer(codec.DISCOVER, OTHER_MAC).reply.yiaddr, "10.141.0.201")  # type: ignore[union-attr]
        self.assertNotIn(UNKNOWN_MAC, self.policy.offers)
        self.clock.advance(601)
        self.assertEqual(self.dora(OTHER_MAC), "10.141.0.201")
        self.assertEqual(self.answer(codec.DISCOVER, THIRD_MAC).reply.yiaddr, address)  # type: ignore[union-attr]

    def test_decline_of_foreign_address_ignored(self) -> None:
        """A DECLINE for an address the machine does not hold changes nothing."""
        address = self.dora(UNKNOWN_MAC)
        self.assertIsNone(
            self.handle(
                codec.DECLINE,
                OTHER_MAC,
                options=((codec.REQUESTED_ADDRESS, codec.addresses(address)),),
            )
        )
        self.assertEqual(self.policy.leases[address].state, "bound")

    def test_release(self) -> None:
        """RELEASE ends the lease now (kept as expired): another machine may
        take the address, and the releasing one gets it back first."""
        address = self.dora(UNKNOWN_MAC)
        outcome = self.answer(
            codec.RELEASE,
            UNKNOWN_MAC,
            ciaddr=address,
            options=((codec.SERVER_ID, codec.addresses(SERVER)),),
        )
        self.assertEqual(outcome.event, "release")
        self.assertIsNone(outcome.reply)
        self.assertEqual(outcome.changes[0].lease.expires, self.clock.seconds())  # type: ignore[union-attr]
        self.assertEqual(self.answer(codec.DISCOVER, UNKNOWN_MAC).reply.yiaddr, address)  # type: ignore[union-attr]

    def test_release_by_other_ignored(self) -> None:
        """Only the holder can release a lease."""
        address = self.dora(UNKNOWN_MAC)
        self.assertIsNone(self.handle(codec.RELEASE, OTHER_MAC, ciaddr=address))
        self.assertGreater(self.policy.leases[address].expires, self.clock.seconds())


class InformTests(Base):
    def test_inform(self) -> None:
        """INFORM gets an ACK with the network's options but no address and
        no lease time, unicast to ciaddr."""
        outcome = self.answer(codec.INFORM, UNKNOWN_MAC, ciaddr="10.141.7.7")
        self.assertEqual(outcome.event, "inform")
        reply = outcome.reply
        assert reply is not None
        self.assertEqual(reply.options[0], (codec.MESSAGE_TYPE, bytes([codec.ACK])))
        self.assertEqual(reply.yiaddr, "0.0.0.0")
        self.assertEqual(reply.ciaddr, "10.141.7.7")
        self.assertNotIn(codec.LEASE_TIME, opts(outcome))
        self.assertIn(codec.SUBNET_MASK, opts(outcome))
        self.assertEqual(outcome.destination, ("10.141.7.7", 68))
        self.assertEqual(outcome.changes, ())

    def test_inform_without_ciaddr(self) -> None:
        """An INFORM without ciaddr is malformed and not answered."""
        self.assertIsNone(self.handle(codec.INFORM, UNKNOWN_MAC))


class IgnoredTests(Base):
    def test_not_answered(self) -> None:
        """BOOTP without option 53, non-Ethernet hardware, server message
        types, and requests from a network luna2d does not know: no answer."""
        from luna2d.protocols.dhcp.codec import Message

        bootp = Message(op=1, xid=1, chaddr=bytes.fromhex(KNOWN_MAC.replace(":", "")))
        self.assertIsNone(self.policy.handle(inbound(bootp), 0))
        self.assertIsNone(self.handle(codec.DISCOVER, htype=6))
        self.assertIsNone(self.handle(codec.DISCOVER, hlen=8))
        for kind in (codec.OFFER, codec.ACK, codec.NAK, 9, 200):
            self.assertIsNone(self.handle(kind))
        elsewhere = Link("eth9", "192.0.2.2")
        self.assertIsNone(self.policy.handle(inbound(request(codec.DISCOVER), elsewhere), 0))

    def test_reply_to_reply_ignored(self) -> None:
        """A BOOTREPLY is never answered."""
        from luna2d.protocols.dhcp.codec import Message

        reply = Message(op=2, xid=1, chaddr=bytes(6), options=((53, b"\x01"),))
        self.assertIsNone(self.policy.handle(inbound(reply), 0))


class BootFileTests(Base):
    def file_of(self, outcome: Outcome) -> str:
        assert outcome.reply is not None
        return outcome.reply.file.decode()

    def test_template_table(self) -> None:
        """iPXE gets the boot URL per the spec's table: known + bootmenu off +
        netboot on: /boot/short; known + bootmenu on + netboot on: /boot;
        known + netboot off (bootmenu either): /boot/disk; unknown: /boot."""
        cases = [
            ({"bootmenu": False, "netboot": True}, "/boot/short"),
            ({"bootmenu": True, "netboot": True}, "/boot"),
            ({"bootmenu": True, "netboot": False}, "/boot/disk"),
            ({"bootmenu": False, "netboot": False}, "/boot/disk"),
        ]
        for flags, path in cases:
            self.index = index(nodes=[node(**flags)])  # type: ignore[arg-type]
            self.assertEqual(
                self.file_of(self.answer(codec.DISCOVER, options=IPXE)),
                f"http://{SERVER}:7050{path}",
                flags,
            )
        self.assertEqual(
            self.file_of(self.answer(codec.DISCOVER, UNKNOWN_MAC, options=IPXE)),
            f"http://{SERVER}:7050/boot",
        )
        self.assertEqual(boot_path(None), "/boot")

    def test_ipxe_rfc3004_user_class(self) -> None:
        """An RFC 3004 length-prefixed user class naming iPXE counts as iPXE."""
        outcome = self.answer(codec.DISCOVER, options=((codec.USER_CLASS, b"\x04iPXE"),))
        self.assertEqual(self.file_of(outcome), f"http://{SERVER}:7050/boot/short")

    def test_http_port_from_settings(self) -> None:
        """The boot URL carries the API port luna2d listens on."""
        self.policy = Policy(lambda: self.index, Settings(http_port=8123))
        self.assertEqual(
            self.file_of(self.answer(codec.DISCOVER, options=IPXE)),
            f"http://{SERVER}:8123/boot/short",
        )

    def test_pxe_by_architecture(self) -> None:
        """PXE firmware gets the iPXE binary by option 93: BIOS undionly.kpxe,
        x86-64 UEFI (7 and 9) ipxe.efi; the reply carries next-server and no
        vendor class (PXEClient without option 43 would send EDK2's PXE to a
        boot server on port 4011); unknown architectures get no file."""
        for arch, expected in ((0, "undionly.kpxe"), (7, "ipxe.efi"), (9, "ipxe.efi"), (11, "")):
            outcome = self.answer(
                codec.DISCOVER,
                options=(
                    (codec.VENDOR_CLASS, b"PXEClient:Arch:%05d:UNDI:003000" % arch),
                    (codec.CLIENT_ARCH, arch.to_bytes(2, "big")),
                ),
            )
            self.assertEqual(self.file_of(outcome), expected, arch)
            self.assertNotIn(codec.VENDOR_CLASS, opts(outcome))
            self.assertEqual(outcome.reply.siaddr, SERVER)  # type: ignore[union-attr]

    def test_pxe_arch_from_vendor_class(self) -> None:
        """Without option 93 the Arch field of the vendor class decides."""
        outcome = self.answer(
            codec.DISCOVER, options=((codec.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003016"),)
        )
        self.assertEqual(self.file_of(outcome), "ipxe.efi")

    def test_snponly_setting(self) -> None:
        """The UEFI binary is a setting (snponly.efi for NICs iPXE has no driver for)."""
        self.policy = Policy(lambda: self.index, Settings(efi_binary="snponly.efi"))
        outcome = self.answer(
            codec.DISCOVER,
            options=((codec.VENDOR_CLASS, b"PXEClient"), (codec.CLIENT_ARCH, b"\x00\x07")),
        )
        self.assertEqual(self.file_of(outcome), "snponly.efi")

    def test_ipxe_wins_over_pxe(self) -> None:
        """iPXE also sends vendor class PXEClient; its user class decides."""
        outcome = self.answer(
            codec.DISCOVER,
            options=(
                (codec.VENDOR_CLASS, b"PXEClient:Arch:00000:UNDI:002001"),
                (codec.USER_CLASS, b"iPXE"),
            ),
        )
        self.assertEqual(self.file_of(outcome), f"http://{SERVER}:7050/boot/short")

    def test_uefi_http_boot(self) -> None:
        """UEFI HTTP boot firmware (vendor class HTTPClient, arch 16) gets the
        iPXE binary's HTTP URL and vendor class HTTPClient back."""
        outcome = self.answer(
            codec.DISCOVER,
            options=(
                (codec.VENDOR_CLASS, b"HTTPClient:Arch:00016:UNDI:003001"),
                (codec.CLIENT_ARCH, b"\x00\x10"),
            ),
        )
        self.assertEqual(self.file_of(outcome), f"http://{SERVER}:7050/files/ipxe.efi")
        self.assertEqual(opts(outcome)[codec.VENDOR_CLASS], b"HTTPClient")

    def test_plain_client_no_file(self) -> None:
        """An operating system's DHCP client gets no boot file and no vendor class."""
        outcome = self.answer(codec.DISCOVER, options=((codec.VENDOR_CLASS, b"udhcp 1.35.0"),))
        self.assertEqual(self.file_of(outcome), "")
        self.assertNotIn(codec.VENDOR_CLASS, opts(outcome))
        self.assertNotIn(codec.BOOTFILE_NAME, opts(outcome))

    def test_option_67_when_asked(self) -> None:
        """The boot file is also sent as option 67 when the client asks for it."""
        outcome = self.answer(
            codec.DISCOVER, options=IPXE + ((codec.PARAMETER_REQUEST_LIST, bytes([1, 3, 67])),)
        )
        self.assertEqual(
            opts(outcome)[codec.BOOTFILE_NAME], f"http://{SERVER}:7050/boot/short".encode()
        )

    def test_max_size(self) -> None:
        """The reply size limit follows the client's option 57 (less IP and
        UDP headers), never below 548."""
        big = self.answer(
            codec.DISCOVER, options=((codec.MAX_MESSAGE_SIZE, (1500).to_bytes(2, "big")),)
        )
        small = self.answer(
            codec.DISCOVER, options=((codec.MAX_MESSAGE_SIZE, (300).to_bytes(2, "big")),)
        )
        self.assertEqual(
            (big.max_size, small.max_size, self.answer(codec.DISCOVER).max_size), (1472, 548, 548)
        )
