# -*- test-case-name: tests.tftp -*-
"""luna2d's read-only TFTP server: RFC 1350 with option negotiation (RFC 2347),
blksize (RFC 2348), tsize and timeout (RFC 2349) and windowsize (RFC 7440).

Three layers, as every luna2d wire protocol:

- :mod:`luna2d.protocols.tftp.codec`: packets as frozen dataclasses,
  ``decode(bytes)`` / ``encode()``, one ``DecodeError``;
- :mod:`luna2d.protocols.tftp.policy`: pure decisions (file names, option
  negotiation, netascii) and the per-transfer state machine, driven by the
  packets it receives and the time it is given;
- :mod:`luna2d.protocols.tftp.files` and :mod:`luna2d.protocols.tftp.server`:
  the file reading off the reactor thread (with an in-memory cache and merged
  in-flight reads) and the thin DatagramProtocols, one listening port plus one
  ephemeral port per transfer."""
