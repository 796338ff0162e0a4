-- Installation-wide facts every server replica must agree on (the
-- fingerprints of the certificate authorities and the director root),
-- written once by the first claim. A new table: no lock on existing ones.

-- +goose Up
CREATE TABLE settings (
    name       TEXT COLLATE "C" PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE settings;
