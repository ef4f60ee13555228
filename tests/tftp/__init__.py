"""Tests of luna2d's TFTP server: codec, policy, files, transport, and real
clients (tftp-hpa, curl, atftp) against the real server on loopback."""
