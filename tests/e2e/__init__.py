"""End-to-end tests: a real machine (QEMU with its iPXE ROM, or OVMF's PXE)
network-boots against the real ``twistd luna2d`` in a network namespace the
test creates."""
