-- The SHA-256 of a release's CSAF advisory, signed in its target
-- (trust.TargetCustom advisory_sha256), so that the server can hand the
-- published document to devices and operators by release name. A constant
-- default: old rows and the previous server version read and write ''.

-- +goose Up
ALTER TABLE releases ADD COLUMN advisory_sha256 TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE releases DROP COLUMN advisory_sha256;
