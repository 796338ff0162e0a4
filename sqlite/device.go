package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"time"

	"github.com/koshin-ota/koshin"
)

const deviceColumns = `id, serial, hardware_id, public_key, encryption_key, group_name, tags,
	cert_serial, cert_expires_at, status, poll_interval, inventory, enrolled_at, last_seen_at, decommissioned_at`

func scanDevice(s scanner) (*koshin.Device, error) {
	var d koshin.Device
	var tags, inv string
	var certExp, enrolled, seen, decom sql.NullInt64
	var poll int64
	if err := s.Scan(&d.ID, &d.Serial, &d.HardwareID, &d.PublicKey, &d.EncryptionKey, &d.Group, &tags,
		&d.CertSerial, &certExp, &d.Status, &poll, &inv, &enrolled, &seen, &decom); err != nil {
		return nil, err
	}
	if err := fromJSON(tags, &d.Tags); err != nil {
		return nil, err
	}
	if err := fromJSON(inv, &d.Inventory); err != nil {
		return nil, err
	}
	d.PollInterval = time.Duration(poll)
	d.CertExpiresAt, d.EnrolledAt, d.LastSeenAt, d.DecommissionedAt = timeOf(certExp), timeOf(enrolled), timeOf(seen), timeOf(decom)
	return &d, nil
}

// CreateDevice implements koshin.DeviceStore.
func (db *DB) CreateDevice(ctx context.Context, d *koshin.Device) error {
	if d.EnrolledAt.IsZero() {
		d.EnrolledAt = db.now()
	}
	return db.update(ctx, func(tx *sql.Tx) error { return insertDevice(ctx, tx, d) })
}

// insertDevice validates and inserts d with its tags. It checks the
// uniqueness rules first for a clear message; the constraints still decide.
func insertDevice(ctx context.Context, tx *sql.Tx, d *koshin.Device) error {
	d.Tags = koshin.CleanTags(d.Tags)
	d.EnrolledAt, d.CertExpiresAt = utcMicro(d.EnrolledAt), utcMicro(d.CertExpiresAt)
	d.LastSeenAt, d.DecommissionedAt = utcMicro(d.LastSeenAt), utcMicro(d.DecommissionedAt)
	if err := d.Validate(); err != nil {
		return err
	}
	if err := checkDeviceUnique(ctx, tx, d); err != nil {
		return err
	}
	tags, err := jsonText(d.Tags)
	if err != nil {
		return err
	}
	inv, err := jsonText(d.Inventory)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO devices (`+deviceColumns+`, inventory_digest)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		d.ID, d.Serial, d.HardwareID, d.PublicKey, nilIfEmpty(d.EncryptionKey), d.Group, tags,
		d.CertSerial, micros(d.CertExpiresAt), d.Status, int64(d.PollInterval), inv,
		micros(d.EnrolledAt), micros(d.LastSeenAt), micros(d.DecommissionedAt), d.Inventory.Digest()); err != nil {
		return err
	}
	return insertTags(ctx, tx, d.ID, d.Tags)
}

// checkDeviceUnique explains a key or serial conflict before the
// constraints would report it without naming the field.
func checkDeviceUnique(ctx context.Context, tx *sql.Tx, d *koshin.Device) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices WHERE id = $1`, d.ID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return koshin.Errorf(koshin.ECONFLICT, "A device with this key is enrolled already.")
	}
	if d.Status != koshin.DeviceActive {
		return nil
	}
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices WHERE serial = $1 AND status = 'active'`, d.Serial).Scan(&n)
	if err == nil && n > 0 {
		return koshin.Errorf(koshin.ECONFLICT, "An active device has serial %s.", d.Serial)
	}
	return err
}

func insertTags(ctx context.Context, tx *sql.Tx, id string, tags []string) error {
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO device_tags (device_id, tag) VALUES ($1, $2)`, id, t); err != nil {
			return err
		}
	}
	return nil
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func validDeviceID(id string) error {
	if len(id) != 64 || !isLowerHex(id) {
		return koshin.Errorf(koshin.EINVALID, "Device ID must be 64 lowercase hex digits.")
	}
	return nil
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// FindDeviceByID implements koshin.DeviceStore.
func (db *DB) FindDeviceByID(ctx context.Context, id string) (*koshin.Device, error) {
	if err := validDeviceID(id); err != nil {
		return nil, err
	}
	d, err := scanDevice(db.hot.findDevice.QueryRowContext(ctx, id))
	if err != nil {
		return nil, notFound(err, "Device %s not found.", id)
	}
	return d, nil
}

const findDeviceQuery = `SELECT ` + deviceColumns + ` FROM devices WHERE id = $1`

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func findDevice(ctx context.Context, q queryer, id string) (*koshin.Device, error) {
	d, err := scanDevice(q.QueryRowContext(ctx, findDeviceQuery, id))
	if err != nil {
		return nil, notFound(err, "Device %s not found.", id)
	}
	return d, nil
}

// FindDeviceBySerial implements koshin.DeviceStore.
func (db *DB) FindDeviceBySerial(ctx context.Context, serial string) (*koshin.Device, error) {
	if err := koshin.ValidateID("Serial", serial); err != nil {
		return nil, err
	}
	d, err := scanDevice(db.read.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE serial = $1
		ORDER BY CASE WHEN status = 'active' THEN 0 ELSE 1 END, enrolled_at DESC LIMIT 1`, serial))
	if err != nil {
		return nil, notFound(err, "No device has serial %s.", serial)
	}
	return d, nil
}

// FindDevices implements koshin.DeviceStore.
func (db *DB) FindDevices(ctx context.Context, f koshin.DeviceFilter) ([]*koshin.Device, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(f.Limit)
	var q query
	deviceConditions(&q, &f)
	if f.After != "" {
		q.where("id > " + q.arg(f.After))
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices`+q.clause()+
		` ORDER BY id LIMIT `+q.arg(limit), q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanDevice)
}

// CountDevices implements koshin.DeviceStore.
func (db *DB) CountDevices(ctx context.Context, f koshin.DeviceFilter) (int, error) {
	f.After, f.Limit = "", 0
	if err := f.Validate(); err != nil {
		return 0, err
	}
	var q query
	deviceConditions(&q, &f)
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices`+q.clause(), q.args...).Scan(&n); err != nil {
		return 0, mapError(err)
	}
	return n, nil
}

// deviceConditions translates a validated filter. Prefixes use substr
// rather than LIKE, whose case rules differ between SQLite and PostgreSQL.
func deviceConditions(q *query, f *koshin.DeviceFilter) {
	if f.IDPrefix != "" {
		q.where("substr(id, 1, " + q.arg(len(f.IDPrefix)) + ") = " + q.arg(f.IDPrefix))
	}
	if f.SerialPrefix != "" {
		q.where("substr(serial, 1, " + q.arg(len(f.SerialPrefix)) + ") = " + q.arg(f.SerialPrefix))
	}
	if f.HardwareID != "" {
		q.where("hardware_id = " + q.arg(f.HardwareID))
	}
	if f.Group != "" {
		q.where("group_name = " + q.arg(f.Group))
	}
	for _, t := range f.Tags {
		q.where("EXISTS (SELECT 1 FROM device_tags t WHERE t.device_id = devices.id AND t.tag = " + q.arg(t) + ")")
	}
	if f.Status != "" {
		q.where("status = " + q.arg(string(f.Status)))
	}
	if !f.SeenBefore.IsZero() {
		q.where("(last_seen_at IS NULL OR last_seen_at < " + q.arg(f.SeenBefore.UnixMicro()) + ")")
	}
}

// collect scans all rows with scan and closes them.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, mapError(err)
		}
		out = append(out, v)
	}
	return out, mapError(rows.Err())
}

// UpdateDevice implements koshin.DeviceStore.
func (db *DB) UpdateDevice(ctx context.Context, id string, upd koshin.DeviceUpdate) (*koshin.Device, error) {
	if err := validDeviceID(id); err != nil {
		return nil, err
	}
	var d *koshin.Device
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		if d, err = findDevice(ctx, tx, id); err != nil {
			return err
		}
		upd.Apply(d)
		if err := d.Validate(); err != nil {
			return err
		}
		if err := saveManaged(ctx, tx, d); err != nil {
			return err
		}
		d, err = findDevice(ctx, tx, id)
		return err
	})
	return d, err
}

// saveManaged writes the operator-managed fields of d.
func saveManaged(ctx context.Context, tx *sql.Tx, d *koshin.Device) error {
	tags, err := jsonText(d.Tags)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET group_name = $2, tags = $3, poll_interval = $4,
		cert_serial = $5, cert_expires_at = $6 WHERE id = $1`,
		d.ID, d.Group, tags, int64(d.PollInterval), d.CertSerial, micros(d.CertExpiresAt)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM device_tags WHERE device_id = $1`, d.ID); err != nil {
		return err
	}
	return insertTags(ctx, tx, d.ID, d.Tags)
}

// TouchDevice implements koshin.DeviceStore. It is one statement on the
// happy path, since every check-in calls it; last-seen never moves back
// when concurrent check-ins commit out of order.
func (db *DB) TouchDevice(ctx context.Context, id string, now time.Time) error {
	if err := validDeviceID(id); err != nil {
		return err
	}
	res, err := db.hot.touch.ExecContext(ctx, id, now.UnixMicro())
	if err != nil {
		return mapError(err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	return db.whyNotActive(ctx, db.read, id)
}

// TouchDevices implements koshin.DeviceStore.
func (db *DB) TouchDevices(ctx context.Context, seen []koshin.Sighting) (int, error) {
	if len(seen) > koshin.MaxTouchBatch {
		return 0, koshin.Errorf(koshin.EINVALID, "At most %d sightings per batch.", koshin.MaxTouchBatch)
	}
	for _, s := range seen {
		if err := validDeviceID(s.DeviceID); err != nil {
			return 0, err
		}
	}
	updated := 0
	err := db.update(ctx, func(tx *sql.Tx) error {
		touch := tx.StmtContext(ctx, db.hot.touch)
		defer touch.Close()
		for _, s := range seen {
			res, err := touch.ExecContext(ctx, s.DeviceID, s.At.UnixMicro())
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			updated += int(n)
		}
		return nil
	})
	return updated, err
}

const touchQuery = `UPDATE devices SET last_seen_at =
	CASE WHEN last_seen_at IS NULL OR last_seen_at < $2 THEN $2 ELSE last_seen_at END
	WHERE id = $1 AND status = 'active'`

// whyNotActive explains why an update for an active device matched nothing.
func (db *DB) whyNotActive(ctx context.Context, q queryer, id string) error {
	var status koshin.DeviceStatus
	err := q.QueryRowContext(ctx, `SELECT status FROM devices WHERE id = $1`, id).Scan(&status)
	if err != nil {
		return notFound(err, "Device %s not found.", id)
	}
	return koshin.Errorf(koshin.EFORBIDDEN, "Device %s is %s.", id, status)
}

// RecordDeviceReport implements koshin.DeviceStore.
func (db *DB) RecordDeviceReport(ctx context.Context, id string, inv koshin.Inventory, now time.Time) (bool, error) {
	if err := validDeviceID(id); err != nil {
		return false, err
	}
	if err := inv.Validate(); err != nil {
		return false, err
	}
	inv.Normalize()
	digest := inv.Digest()
	text, err := jsonText(inv)
	if err != nil {
		return false, err
	}
	appended := false
	err = db.update(ctx, func(tx *sql.Tx) error {
		var prev []byte
		var status koshin.DeviceStatus
		err := tx.QueryRowContext(ctx, `SELECT status, inventory_digest FROM devices WHERE id = $1`, id).Scan(&status, &prev)
		if err != nil {
			return notFound(err, "Device %s not found.", id)
		}
		if status != koshin.DeviceActive {
			return koshin.Errorf(koshin.EFORBIDDEN, "Device %s is %s.", id, status)
		}
		appended = !bytes.Equal(prev, digest)
		return db.saveReport(ctx, tx, id, text, digest, appended, now)
	})
	return appended && err == nil, err
}

func (db *DB) saveReport(ctx context.Context, tx *sql.Tx, id, inv string, digest []byte, changed bool, now time.Time) error {
	if _, err := tx.StmtContext(ctx, db.hot.touch).ExecContext(ctx, id, now.UnixMicro()); err != nil || !changed {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET inventory = $2, inventory_digest = $3 WHERE id = $1`,
		id, inv, digest); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO device_reports (device_id, received_at, inventory) VALUES ($1, $2, $3)`,
		id, now.UnixMicro(), inv)
	return err
}

// FindDeviceReports implements koshin.DeviceStore.
func (db *DB) FindDeviceReports(ctx context.Context, id string, p koshin.SeqPage) ([]*koshin.DeviceReport, error) {
	if err := validDeviceID(id); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(p.Limit)
	var q query
	q.where("device_id = " + q.arg(id))
	order := q.seqPage("seq", p.Cursor, p.Desc, limit)
	rows, err := db.read.QueryContext(ctx, `SELECT seq, device_id, received_at, inventory FROM device_reports`+
		q.clause()+order, q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanReport)
}

// FindFleetReports implements koshin.DeviceStore.
func (db *DB) FindFleetReports(ctx context.Context, p koshin.SeqPage) ([]*koshin.DeviceReport, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(p.Limit)
	var q query
	order := q.seqPage("seq", p.Cursor, p.Desc, limit)
	rows, err := db.read.QueryContext(ctx, `SELECT seq, device_id, received_at, inventory FROM device_reports`+
		q.clause()+order, q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanReport)
}

func scanReport(s scanner) (*koshin.DeviceReport, error) {
	var r koshin.DeviceReport
	var at sql.NullInt64
	var inv string
	if err := s.Scan(&r.Seq, &r.DeviceID, &at, &inv); err != nil {
		return nil, err
	}
	r.ReceivedAt = timeOf(at)
	return &r, fromJSON(inv, &r.Inventory)
}

// DecommissionDevice implements koshin.DeviceStore.
func (db *DB) DecommissionDevice(ctx context.Context, id string, now time.Time) (*koshin.Device, error) {
	if err := validDeviceID(id); err != nil {
		return nil, err
	}
	var d *koshin.Device
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		if d, err = findDevice(ctx, tx, id); err != nil || d.Status == koshin.DeviceDecommissioned {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET status = 'decommissioned', decommissioned_at = $2 WHERE id = $1`,
			id, now.UnixMicro()); err != nil {
			return err
		}
		// The device will never report again, so even a started assignment
		// can only end here.
		var q query
		q.where("device_id = " + q.arg(id))
		if _, err := cancelAssignments(ctx, tx, &q, "device decommissioned", now); err != nil {
			return err
		}
		d, err = findDevice(ctx, tx, id)
		return err
	})
	return d, err
}
