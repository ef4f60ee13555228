-- luna2d schema version 2: leases of the DHCP dynamic ranges, kept across
-- restarts. One row per address; a declined address is held back until
-- its expiry under state 'declined'. Times are UNIX seconds.
CREATE TABLE dhcp_lease (
    address   TEXT PRIMARY KEY,
    mac       TEXT NOT NULL,
    state     TEXT NOT NULL DEFAULT 'bound' CHECK (state IN ('bound', 'declined')),
    expires   REAL NOT NULL,
    hostname  TEXT
);
CREATE INDEX dhcp_lease_mac ON dhcp_lease(mac);
