package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin/postgres"
	"github.com/koshin-ota/koshin/sqlite"
)

func init() { register((*Main).migrateStoreCmd) }

// envPostgresDSN is where --to postgres (without a DSN) takes the DSN
// from: the same variable `koshin server` reads, so the password need not
// appear on a command line.
const envPostgresDSN = "KOSHIN_POSTGRES__DSN"

func (m *Main) migrateStoreCmd() *cobra.Command {
	var from, to string
	c := &cobra.Command{
		Use:   "migrate-store --from sqlite:PATH --to postgres[:DSN]",
		Short: "Copy a SQLite installation's database into an empty PostgreSQL database",
		Long: `Copy every table of a koshin SQLite database (devices, reports,
enrollment, releases, rollouts with their plans and assignments, events,
operators, tokens, the audit log, settings) into an empty PostgreSQL
database, for moving an installation to replicas (docs/scale-out.md).

Stop the server first. Both databases are migrated to this version's
schema, the target must be empty (it is refused otherwise, and must not
have been initialised with 'koshin server init': copy the data directory's
pki/ and director/ to the replicas instead). Everything is copied in one
PostgreSQL transaction, in dependency order, and verified before it
commits: each table's row count and an order-independent SHA-256 checksum
over its rows must match the source's. Afterwards the audit log's hash
chain is verified on the target and its head compared with the source's.
A failure leaves the target as it was.

The DSN comes after 'postgres:' or, with '--to postgres', from
` + envPostgresDSN + ` (keeps the password off the command line).`,
		Example: `  KOSHIN_POSTGRES__DSN='postgres://koshin@db.example/koshin?sslmode=verify-full' \
    koshin migrate-store --from sqlite:/var/lib/koshin/koshin.db --to postgres`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return m.migrateStore(cmd.Context(), from, to) },
	}
	c.Flags().StringVar(&from, "from", "", "source `sqlite:PATH` (the server's koshin.db)")
	c.Flags().StringVar(&to, "to", "", "target `postgres:DSN`, or postgres to read the DSN from "+envPostgresDSN)
	c.MarkFlagRequired("from")
	c.MarkFlagRequired("to")
	return c
}

func (m *Main) migrateStore(ctx context.Context, from, to string) error {
	path, ok := strings.CutPrefix(from, "sqlite:")
	if !ok || path == "" {
		return usagef("--from must be sqlite:PATH")
	}
	dsn, ok := strings.CutPrefix(to, "postgres:")
	if to == "postgres" {
		dsn, ok = m.Getenv(envPostgresDSN), true
	}
	if !ok || dsn == "" {
		return usagef("--to must be postgres:DSN, or postgres with %s set", envPostgresDSN)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("source database: %w", err)
	}
	// Opening each store applies pending migrations, so both have this
	// version's schema; the audit head is read through the store's own
	// verification.
	src := sqlite.NewDB(path)
	if err := src.Open(ctx); err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	head, err := src.VerifyAudit(ctx)
	src.Close()
	if err != nil {
		return fmt.Errorf("source audit log does not verify; not copying: %w", err)
	}
	dst := postgres.NewDB(dsn)
	if err := dst.Open(ctx); err != nil {
		return fmt.Errorf("open target: %w", err)
	}
	defer dst.Close()

	start := time.Now()
	res, err := copyStore(ctx, path, dsn)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tSHA-256 (source = target)")
	for _, t := range res {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", t.name, t.rows, t.sum)
	}
	tw.Flush()
	got, err := dst.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("copied, but the target's audit log does not verify: %w", err)
	}
	if got.Seq != head.Seq || !equalBytes(got.Hash, head.Hash) {
		return errors.New("copied, but the target's audit head differs from the source's")
	}
	fmt.Fprintf(m.Stdout, "audit chain verified: %d entries, head %x\n", got.Seq, got.Hash)
	fmt.Fprintf(m.Stdout, "copied %d tables in %s; point the servers at the PostgreSQL store (store: postgres)\n",
		len(res), time.Since(start).Round(time.Millisecond))
	return nil
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }
