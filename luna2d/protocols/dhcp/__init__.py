"""luna2d's DHCPv4 server: ``codec`` (RFC 2131/2132 messages, option overload,
RFC 3396 long options), ``policy`` (who gets which address and boot file) and
``protocol`` (the UDP transport bound per interface)."""
