package koshin

// Store is everything the server persists. Each method is its own
// transaction, so callers never hold a transaction open across network
// I/O and each state change is all-or-nothing across crashes and replicas.
// Record-keeping timestamps (CreatedAt, ImportedAt, audit times) come from
// the store's injected clock; rule-bearing times (expiry, deadlines,
// lockouts, rollout transitions) are the now argument of the method so that
// a caller evaluates a rule and applies it at the same instant.
type Store interface {
	DeviceStore
	EnrollmentStore
	ReleaseStore
	RolloutStore
	AssignmentStore
	EventStore
	OperatorStore
	AuditStore
	SettingStore

	// Close releases the store's resources.
	Close() error
}
