"""luna2d's native IPMI over LAN (RMCP+) client: codec, crypto, a session
state machine without I/O, the commands, and a UDP client for many BMCs."""
