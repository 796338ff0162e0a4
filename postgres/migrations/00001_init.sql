-- koshin schema, PostgreSQL dialect. It mirrors sqlite/migrations so that
-- both stores share their query text: times are BIGINT microseconds since
-- the Unix epoch (UTC) and durations BIGINT nanoseconds, exact to compare;
-- nested values that are never filtered on are JSON text, kept verbatim.
-- Every uniqueness and state rule the SQLite schema enforces is enforced
-- here by the same constraint. Keys that lists order by or page through
-- are COLLATE "C": they sort byte-wise, as in SQLite, whatever locale the
-- database was created with (and compare faster). Read README.md in this
-- directory before adding a migration: later ones must never take long
-- locks on tables that already hold a fleet.

-- +goose Up
CREATE TABLE devices (
    id                TEXT COLLATE "C" PRIMARY KEY, -- hex SHA-256 of public_key (CCDS STS01)
    serial            TEXT COLLATE "C" NOT NULL,    -- physical ID (CCDS STS02)
    hardware_id       TEXT NOT NULL,
    public_key        BYTEA NOT NULL,
    encryption_key    BYTEA,
    group_name        TEXT NOT NULL DEFAULT '',
    tags              TEXT NOT NULL DEFAULT '[]', -- JSON; device_tags indexes them
    cert_serial       TEXT NOT NULL DEFAULT '',
    cert_expires_at   BIGINT,
    status            TEXT NOT NULL CHECK (status IN ('active', 'decommissioned')),
    poll_interval     BIGINT NOT NULL DEFAULT 0,
    inventory         TEXT NOT NULL DEFAULT '{}',
    inventory_digest  BYTEA,
    enrolled_at       BIGINT NOT NULL,
    last_seen_at      BIGINT,
    decommissioned_at BIGINT
) WITH (fillfactor = 70);
-- Every check-in rewrites last_seen_at. With free space left in each page
-- (fillfactor), PostgreSQL can do that as a heap-only update, writing no
-- index entries and leaving no index bloat: a row holds a public key and an
-- inventory, so a full page would force every check-in to update all five
-- indexes.
-- A serial belongs to at most one active device; a decommissioned device
-- keeps its serial so that the physical unit can be enrolled again with a
-- new key (factory reset, CCDS HLC06).
CREATE UNIQUE INDEX devices_active_serial ON devices (serial) WHERE status = 'active';
CREATE INDEX devices_serial ON devices (serial, enrolled_at);
CREATE INDEX devices_hardware ON devices (hardware_id, id);
CREATE INDEX devices_group ON devices (group_name, id);

CREATE TABLE device_tags (
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
    tag       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (device_id, tag)
);
CREATE INDEX device_tags_tag ON device_tags (tag, device_id);

CREATE TABLE device_reports (
    seq         BIGSERIAL PRIMARY KEY,
    device_id   TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
    received_at BIGINT NOT NULL,
    inventory   TEXT NOT NULL
);
CREATE INDEX device_reports_device ON device_reports (device_id, seq);

CREATE TABLE preauthorizations (
    serial      TEXT COLLATE "C" PRIMARY KEY,
    hardware_id TEXT NOT NULL,
    public_key  BYTEA NOT NULL,
    device_id   TEXT COLLATE "C" NOT NULL UNIQUE,
    group_name  TEXT NOT NULL DEFAULT '',
    tags        TEXT NOT NULL DEFAULT '[]',
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE enrollment_tokens (
    id          BIGSERIAL PRIMARY KEY,
    hash        BYTEA NOT NULL UNIQUE,            -- SHA-256 of the secret; never the secret
    description TEXT NOT NULL DEFAULT '',
    group_name  TEXT NOT NULL DEFAULT '',
    tags        TEXT NOT NULL DEFAULT '[]',
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    device_id   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE releases (
    name            TEXT COLLATE "C" PRIMARY KEY,
    length          BIGINT NOT NULL,
    hashes          TEXT NOT NULL,
    hardware_ids    TEXT NOT NULL,
    component       TEXT NOT NULL,
    release_counter BIGINT NOT NULL,
    version         TEXT NOT NULL DEFAULT '',
    channel         TEXT NOT NULL CHECK (channel IN ('release', 'dev')),
    security        BOOLEAN NOT NULL DEFAULT FALSE,
    advisories      TEXT NOT NULL DEFAULT '[]',
    support_end     TEXT NOT NULL DEFAULT '',
    sbom_sha256     TEXT NOT NULL DEFAULT '',
    encrypted       BOOLEAN NOT NULL DEFAULT FALSE,
    revoked         BOOLEAN NOT NULL DEFAULT FALSE,
    revoked_at      BIGINT,
    imported_at     BIGINT NOT NULL
);
CREATE INDEX releases_component ON releases (component, name);

CREATE TABLE release_hardware (
    release_name TEXT COLLATE "C" NOT NULL REFERENCES releases (name),
    hardware_id  TEXT NOT NULL,
    PRIMARY KEY (release_name, hardware_id)
);
CREATE INDEX release_hardware_hw ON release_hardware (hardware_id, release_name);

CREATE TABLE rollouts (
    id               BIGSERIAL PRIMARY KEY,
    name             TEXT NOT NULL DEFAULT '',
    release_name     TEXT COLLATE "C" NOT NULL REFERENCES releases (name),
    selector         TEXT NOT NULL,
    phases           TEXT NOT NULL,
    threshold        TEXT NOT NULL,
    silence_timeout  BIGINT NOT NULL,
    maintenance_window TEXT NOT NULL DEFAULT '',
    rate_per_minute  INTEGER NOT NULL DEFAULT 0,
    mode             TEXT NOT NULL,
    stratify_tags    TEXT NOT NULL DEFAULT '[]',
    seed             BIGINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('draft', 'running', 'paused', 'halted', 'completed', 'aborted')),
    halt_reason      TEXT NOT NULL DEFAULT '',
    phase            INTEGER NOT NULL DEFAULT 0,
    phase_started_at BIGINT,
    eligible         INTEGER NOT NULL DEFAULT 0,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);
CREATE INDEX rollouts_state ON rollouts (state, id);
CREATE INDEX rollouts_release ON rollouts (release_name, id);

CREATE TABLE assignments (
    id           BIGSERIAL PRIMARY KEY,
    rollout_id   BIGINT NOT NULL REFERENCES rollouts (id),
    device_id    TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
    phase        INTEGER NOT NULL,
    release_name TEXT NOT NULL,
    mode         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN (
        'pending', 'awaiting-approval', 'offered', 'downloading', 'installing', 'rebooting', 'postponed',
        'committed', 'downloaded', 'failed', 'rolled-back', 'rejected', 'declined', 'silent-failed', 'cancelled')),
    -- active mirrors koshin.AssignmentState.Active; the CHECK keeps the two
    -- from ever disagreeing, and the partial unique index below relies on it.
    active       BOOLEAN NOT NULL CHECK (active = (state IN (
        'pending', 'awaiting-approval', 'offered', 'downloading', 'installing', 'rebooting', 'postponed'))),
    reason       TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    deadline     BIGINT,
    finished_at  BIGINT
);
-- At most one active assignment per device, enforced by the database so that
-- no interleaving of writers (server replicas, operators) can double-assign.
CREATE UNIQUE INDEX assignments_one_active ON assignments (device_id) WHERE active;
CREATE INDEX assignments_rollout ON assignments (rollout_id, phase, state);
CREATE INDEX assignments_device ON assignments (device_id, id);
CREATE INDEX assignments_created ON assignments (rollout_id, created_at);
CREATE INDEX assignments_deadline ON assignments (deadline) WHERE active;

-- The plan made at start: which phase assigns each eligible device, in
-- which order, and the device's current assignment in this rollout. A halt
-- cancels not-yet-started assignments and returns their members to
-- 'planned', so a resumed rollout assigns them again (a new assignment row).
CREATE TABLE rollout_members (
    rollout_id    BIGINT NOT NULL REFERENCES rollouts (id),
    device_id     TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
    phase         INTEGER NOT NULL,
    rank          INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('planned', 'assigned', 'skipped')),
    assignment_id BIGINT REFERENCES assignments (id),
    PRIMARY KEY (rollout_id, device_id),
    CHECK ((state = 'assigned') = (assignment_id IS NOT NULL))
);
CREATE INDEX rollout_members_next ON rollout_members (rollout_id, phase, state, rank);
-- The foreign key's referencing side: replan and the phase statistics join
-- on it, and PostgreSQL does not index it by itself.
CREATE INDEX rollout_members_assignment ON rollout_members (assignment_id) WHERE assignment_id IS NOT NULL;

CREATE TABLE events (
    seq           BIGSERIAL PRIMARY KEY,
    device_id     TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
    event_id      TEXT COLLATE "C" NOT NULL,
    type          TEXT NOT NULL,
    release_name  TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT '',
    detail        TEXT NOT NULL DEFAULT '',
    device_time   BIGINT,
    received_at   BIGINT NOT NULL,
    assignment_id BIGINT NOT NULL DEFAULT 0,
    UNIQUE (device_id, event_id)                -- a retried report is stored once
);
CREATE INDEX events_device ON events (device_id, seq);
CREATE INDEX events_received ON events (received_at, type);

CREATE TABLE operators (
    name          TEXT COLLATE "C" PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret   BYTEA,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    last_login_at BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id         BIGSERIAL PRIMARY KEY,
    operator   TEXT COLLATE "C" NOT NULL REFERENCES operators (name),
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX api_tokens_operator ON api_tokens (operator, id);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,               -- set by the writer under the chain lock: previous + 1
    logged_at BIGINT NOT NULL,
    principal TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL DEFAULT '',
    result    TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '',
    prev_hash BYTEA NOT NULL,
    hash      BYTEA NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (logged_at);

-- History tables are append-only. The triggers stop the application and
-- casual SQL from rewriting history, TRUNCATE included (row triggers do not
-- see it); the audit hash chain detects what a determined attacker with
-- superuser access does anyway. For defence in depth, run the server as a
-- role that owns nothing and holds only SELECT and INSERT on these tables
-- (docs/scale-out.md).
-- +goose StatementBegin
CREATE FUNCTION koshin_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION koshin_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION koshin_append_only();
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION koshin_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION koshin_append_only();
CREATE TRIGGER device_reports_append_only BEFORE UPDATE OR DELETE ON device_reports
    FOR EACH ROW EXECUTE FUNCTION koshin_append_only();
CREATE TRIGGER device_reports_no_truncate BEFORE TRUNCATE ON device_reports
    FOR EACH STATEMENT EXECUTE FUNCTION koshin_append_only();

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
DROP FUNCTION koshin_append_only();
