-- Scale-out (issue 13): several processes on one database.
-- Each live process has a row it refreshes (its heartbeat); reservations and job leases name their
-- owner, so a process that starts refunds only what a dead one left, never a live neighbour's work.
CREATE TABLE processes (
    owner        TEXT PRIMARY KEY,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
ALTER TABLE reservations ADD COLUMN owner TEXT;
CREATE INDEX reservations_held_by_owner ON reservations (owner) WHERE state = 'held';
-- A poller claims a due job for a while (its lease); others skip it until the lease expires.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
-- The Hypereal request budget shared by every process (rolling hour): one row per request sent.
CREATE TABLE hypereal_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL
);
CREATE INDEX hypereal_requests_at ON hypereal_requests (at);
