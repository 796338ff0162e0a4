-- Installation-wide facts every server replica must agree on (the
-- fingerprints of the certificate authorities and the director root),
-- written once by the first claim.

-- +goose Up
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE settings;
