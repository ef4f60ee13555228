"""Wire protocols luna2d serves itself: each a pure codec, a pure policy and a
thin DatagramProtocol. Nothing here knows HTTP or SQL; ``luna2d.tap`` hands
each protocol what it needs (an index, a lease store)."""
