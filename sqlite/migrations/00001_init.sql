-- koshin schema, SQLite dialect. Times are INTEGER microseconds since the
-- Unix epoch (UTC) and durations INTEGER nanoseconds, so that the query text
-- is shared with PostgreSQL (BIGINT there) and comparisons are exact.
-- Booleans are bound as parameters (0/1 here, boolean there); nested values
-- that are never filtered on are JSON text.

-- +goose Up
CREATE TABLE devices (
    id                TEXT PRIMARY KEY,           -- hex SHA-256 of public_key (CCDS STS01)
    serial            TEXT NOT NULL,              -- physical ID (CCDS STS02)
    hardware_id       TEXT NOT NULL,
    public_key        BLOB NOT NULL,
    encryption_key    BLOB,
    group_name        TEXT NOT NULL DEFAULT '',
    tags              TEXT NOT NULL DEFAULT '[]', -- JSON; device_tags indexes them
    cert_serial       TEXT NOT NULL DEFAULT '',
    cert_expires_at   INTEGER,
    status            TEXT NOT NULL CHECK (status IN ('active', 'decommissioned')),
    poll_interval     INTEGER NOT NULL DEFAULT 0,
    inventory         TEXT NOT NULL DEFAULT '{}',
    inventory_digest  BLOB,
    enrolled_at       INTEGER NOT NULL,
    last_seen_at      INTEGER,
    decommissioned_at INTEGER
);
-- A serial belongs to at most one active device; a decommissioned device
-- keeps its serial so that the physical unit can be enrolled again with a
-- new key (factory reset, CCDS HLC06).
CREATE UNIQUE INDEX devices_active_serial ON devices (serial) WHERE status = 'active';
CREATE INDEX devices_serial ON devices (serial, enrolled_at);
CREATE INDEX devices_hardware ON devices (hardware_id, id);
CREATE INDEX devices_group ON devices (group_name, id);

CREATE TABLE device_tags (
    device_id TEXT NOT NULL REFERENCES devices (id),
    tag       TEXT NOT NULL,
    PRIMARY KEY (device_id, tag)
);
CREATE INDEX device_tags_tag ON device_tags (tag, device_id);

CREATE TABLE device_reports (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   TEXT NOT NULL REFERENCES devices (id),
    received_at INTEGER NOT NULL,
    inventory   TEXT NOT NULL
);
CREATE INDEX device_reports_device ON device_reports (device_id, seq);

CREATE TABLE preauthorizations (
    serial      TEXT PRIMARY KEY,
    hardware_id TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    device_id   TEXT NOT NULL UNIQUE,
    group_name  TEXT NOT NULL DEFAULT '',
    tags        TEXT NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    used_at     INTEGER
);

CREATE TABLE enrollment_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    hash        BLOB NOT NULL UNIQUE,             -- SHA-256 of the secret; never the secret
    description TEXT NOT NULL DEFAULT '',
    group_name  TEXT NOT NULL DEFAULT '',
    tags        TEXT NOT NULL DEFAULT '[]',
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    device_id   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE releases (
    name            TEXT PRIMARY KEY,
    length          INTEGER NOT NULL,
    hashes          TEXT NOT NULL,
    hardware_ids    TEXT NOT NULL,
    component       TEXT NOT NULL,
    release_counter INTEGER NOT NULL,
    version         TEXT NOT NULL DEFAULT '',
    channel         TEXT NOT NULL CHECK (channel IN ('release', 'dev')),
    security        INTEGER NOT NULL DEFAULT 0,
    advisories      TEXT NOT NULL DEFAULT '[]',
    support_end     TEXT NOT NULL DEFAULT '',
    sbom_sha256     TEXT NOT NULL DEFAULT '',
    encrypted       INTEGER NOT NULL DEFAULT 0,
    revoked         INTEGER NOT NULL DEFAULT 0,
    revoked_at      INTEGER,
    imported_at     INTEGER NOT NULL
);
CREATE INDEX releases_component ON releases (component, name);

CREATE TABLE release_hardware (
    release_name TEXT NOT NULL REFERENCES releases (name),
    hardware_id  TEXT NOT NULL,
    PRIMARY KEY (release_name, hardware_id)
);
CREATE INDEX release_hardware_hw ON release_hardware (hardware_id, release_name);

CREATE TABLE rollouts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL DEFAULT '',
    release_name     TEXT NOT NULL REFERENCES releases (name),
    selector         TEXT NOT NULL,
    phases           TEXT NOT NULL,
    threshold        TEXT NOT NULL,
    silence_timeout  INTEGER NOT NULL,
    maintenance_window TEXT NOT NULL DEFAULT '',
    rate_per_minute  INTEGER NOT NULL DEFAULT 0,
    mode             TEXT NOT NULL,
    stratify_tags    TEXT NOT NULL DEFAULT '[]',
    seed             INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('draft', 'running', 'paused', 'halted', 'completed', 'aborted')),
    halt_reason      TEXT NOT NULL DEFAULT '',
    phase            INTEGER NOT NULL DEFAULT 0,
    phase_started_at INTEGER,
    eligible         INTEGER NOT NULL DEFAULT 0,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);
CREATE INDEX rollouts_state ON rollouts (state, id);
CREATE INDEX rollouts_release ON rollouts (release_name, id);

-- The plan made at start: which phase assigns each eligible device, in
-- which order, and the device's current assignment in this rollout. A halt
-- cancels not-yet-started assignments and returns their members to
-- 'planned', so a resumed rollout assigns them again (a new assignment row).
CREATE TABLE rollout_members (
    rollout_id    INTEGER NOT NULL REFERENCES rollouts (id),
    device_id     TEXT NOT NULL REFERENCES devices (id),
    phase         INTEGER NOT NULL,
    rank          INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('planned', 'assigned', 'skipped')),
    assignment_id INTEGER REFERENCES assignments (id),
    PRIMARY KEY (rollout_id, device_id),
    CHECK ((state = 'assigned') = (assignment_id IS NOT NULL))
);
CREATE INDEX rollout_members_next ON rollout_members (rollout_id, phase, state, rank);

CREATE TABLE assignments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id   INTEGER NOT NULL REFERENCES rollouts (id),
    device_id    TEXT NOT NULL REFERENCES devices (id),
    phase        INTEGER NOT NULL,
    release_name TEXT NOT NULL,
    mode         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN (
        'pending', 'awaiting-approval', 'offered', 'downloading', 'installing', 'rebooting', 'postponed',
        'committed', 'downloaded', 'failed', 'rolled-back', 'rejected', 'declined', 'silent-failed', 'cancelled')),
    -- active mirrors koshin.AssignmentState.Active; the CHECK keeps the two
    -- from ever disagreeing, and the partial unique index below relies on it.
    active       INTEGER NOT NULL CHECK (active = (state IN (
        'pending', 'awaiting-approval', 'offered', 'downloading', 'installing', 'rebooting', 'postponed'))),
    reason       TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deadline     INTEGER,
    finished_at  INTEGER
);
-- At most one active assignment per device, enforced by the database so that
-- no interleaving of writers (engine replicas, operators) can double-assign.
CREATE UNIQUE INDEX assignments_one_active ON assignments (device_id) WHERE active = 1;
CREATE INDEX assignments_rollout ON assignments (rollout_id, phase, state);
CREATE INDEX assignments_device ON assignments (device_id, id);
CREATE INDEX assignments_created ON assignments (rollout_id, created_at);
CREATE INDEX assignments_deadline ON assignments (deadline) WHERE active = 1;

CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id     TEXT NOT NULL REFERENCES devices (id),
    event_id      TEXT NOT NULL,
    type          TEXT NOT NULL,
    release_name  TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT '',
    detail        TEXT NOT NULL DEFAULT '',
    device_time   INTEGER,
    received_at   INTEGER NOT NULL,
    assignment_id INTEGER NOT NULL DEFAULT 0,
    UNIQUE (device_id, event_id)                -- a retried report is stored once
);
CREATE INDEX events_device ON events (device_id, seq);
CREATE INDEX events_received ON events (received_at, type);

CREATE TABLE operators (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret   BLOB,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,
    last_login_at INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    operator   TEXT NOT NULL REFERENCES operators (name),
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX api_tokens_operator ON api_tokens (operator, id);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,              -- set by the writer: previous + 1
    logged_at INTEGER NOT NULL,
    principal TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL DEFAULT '',
    result    TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '',
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (logged_at);

-- History tables are append-only. The triggers stop the application and
-- casual SQL from rewriting history; the audit hash chain detects what a
-- determined attacker with file access does anyway.
-- +goose StatementBegin
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER device_reports_append_only_update BEFORE UPDATE ON device_reports
BEGIN SELECT RAISE(ABORT, 'device reports are append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER device_reports_append_only_delete BEFORE DELETE ON device_reports
BEGIN SELECT RAISE(ABORT, 'device reports are append-only'); END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_log;
DROP TABLE api_tokens;
DROP TABLE operators;
DROP TABLE events;
DROP TABLE rollout_members;
DROP TABLE assignments;
DROP TABLE rollouts;
DROP TABLE release_hardware;
DROP TABLE releases;
DROP TABLE enrollment_tokens;
DROP TABLE preauthorizations;
DROP TABLE device_reports;
DROP TABLE device_tags;
DROP TABLE devices;
