-- luna2d schema version 1: every object kind in one table, described by
-- luna2d/model/kinds.py; addresses, secrets, users and the journal beside it.
CREATE TABLE object (
    id      INTEGER PRIMARY KEY,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    data    TEXT NOT NULL DEFAULT '{}',
    UNIQUE (kind, name)
);

CREATE TABLE interface (
    id          INTEGER PRIMARY KEY,
    object_id   INTEGER NOT NULL REFERENCES object(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL DEFAULT 0,
    network_id  INTEGER REFERENCES object(id) ON DELETE RESTRICT,
    ipaddress   TEXT,
    macaddress  TEXT,
    options     TEXT,
    UNIQUE (object_id, name)
);
CREATE UNIQUE INDEX interface_ip ON interface(ipaddress) WHERE ipaddress IS NOT NULL;
CREATE UNIQUE INDEX interface_mac ON interface(macaddress) WHERE macaddress IS NOT NULL;
CREATE INDEX interface_network ON interface(network_id);

CREATE TABLE secret (
    id        INTEGER PRIMARY KEY,
    owner_id  INTEGER NOT NULL REFERENCES object(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    position  INTEGER NOT NULL DEFAULT 0,
    path      TEXT,
    content   BLOB NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE journal (
    id          INTEGER PRIMARY KEY,
    function    TEXT NOT NULL,
    object      TEXT,
    param       TEXT,
    payload     TEXT,
    masteronly  TEXT NOT NULL DEFAULT '0',
    misc        TEXT,
    sendfor     TEXT NOT NULL,
    sendby      TEXT,
    created     TEXT NOT NULL
);
CREATE INDEX journal_sendfor ON journal(sendfor, id);
