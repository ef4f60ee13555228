"""Tests of luna2d's DHCP server: codec, policy, boot index, leases,
transport, and real DHCP clients in network namespaces."""
