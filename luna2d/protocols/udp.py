# -*- test-case-name: tests.dhcp.test_protocol,tests.tftp.test_server -*-
"""Socket settings shared by luna2d's UDP services."""

from __future__ import annotations

import socket

# Linux's values; the FORCE variants pass the kernel's rmem_max / wmem_max
# caps, and need CAP_NET_ADMIN.
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
_FORCED = {socket.SO_RCVBUF: SO_RCVBUFFORCE, socket.SO_SNDBUF: SO_SNDBUFFORCE}


def set_buffer(sock: socket.socket, size: int, option: int = socket.SO_RCVBUF) -> bool:
    """Ask for a ``size``-byte receive (``SO_RCVBUF``) or send
    (``SO_SNDBUF``) buffer on ``sock``, so that a burst of datagrams (a boot
    storm, a fan-out to many BMCs) is queued rather than dropped. Privileged,
    the size is forced past the kernel's cap; otherwise the kernel gives what
    its cap allows. Never raises: False when neither could be set."""
    for name in (_FORCED[option], option):
        try:
            sock.setsockopt(socket.SOL_SOCKET, name, size)
        except OSError:
            continue
        return True
    return False
