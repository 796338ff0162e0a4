-- TOTP replay protection and pending second-factor offers move from the
-- server's memory into the store, so that they hold across replicas.
-- Adding nullable columns and a column with a constant default changes only
-- the catalogue: no rewrite, the ACCESS EXCLUSIVE lock is held for an
-- instant.

-- +goose Up
ALTER TABLE operators ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
ALTER TABLE operators ADD COLUMN totp_pending BYTEA;
ALTER TABLE operators ADD COLUMN totp_pending_until BIGINT;

-- +goose Down
ALTER TABLE operators DROP COLUMN totp_pending_until;
ALTER TABLE operators DROP COLUMN totp_pending;
ALTER TABLE operators DROP COLUMN totp_last_step;
