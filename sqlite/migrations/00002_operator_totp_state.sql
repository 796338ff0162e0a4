-- TOTP replay protection and pending second-factor offers move from the
-- server's memory into the store, so that they hold across replicas.

-- +goose Up
ALTER TABLE operators ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operators ADD COLUMN totp_pending BLOB;
ALTER TABLE operators ADD COLUMN totp_pending_until INTEGER;

-- +goose Down
ALTER TABLE operators DROP COLUMN totp_pending_until;
ALTER TABLE operators DROP COLUMN totp_pending;
ALTER TABLE operators DROP COLUMN totp_last_step;
