package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/password"
)

func init() { register((*Main).adminCmd) }

// adminCmd works on the server's database directly, on the server's own
// machine: it is how the first administrator comes to exist (there is no
// default account, EN 303 645 5.1-1, MIC terminal rules) and how a locked-
// out installation recovers. Everything else goes through the management API.
func (m *Main) adminCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "admin",
		Short: "Create operators and recover access on the server machine",
	}
	c.AddCommand(m.adminCreateCmd(), m.adminPasswdCmd())
	return c
}

type adminFlags struct {
	serverFlags
	name, role string
	stdin      bool
	removeTOTP bool
}

func (m *Main) adminCreateCmd() *cobra.Command {
	var f adminFlags
	c := &cobra.Command{
		Use:   "create --name NAME --role ROLE",
		Short: "Create an operator (the first administrator, typically)",
		Long: `Create an operator directly in the server's database.

The password is generated (random, shown once) unless --password-stdin
reads one from standard input; it must meet the password policy (at least
12 characters, not containing the name). Roles: admin, release-manager,
operator, viewer, auditor.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return m.withStore(cmd, f.serverFlags, func(ctx context.Context, st koshin.Store) error {
				return m.adminCreate(ctx, st, f)
			})
		},
	}
	addAdminFlags(c, &f)
	c.Flags().StringVar(&f.role, "role", "", "`ROLE` of the new operator")
	c.MarkFlagRequired("role")
	return c
}

func (m *Main) adminPasswdCmd() *cobra.Command {
	var f adminFlags
	c := &cobra.Command{
		Use:   "passwd --name NAME",
		Short: "Set a new password for an operator (recovery)",
		Long: `Set a new password for an operator directly in the server's database,
for when no administrator can log in. The password is generated unless
--password-stdin reads one. --remove-totp also removes a lost second factor.
The operator's sessions and tokens stay valid; revoke them through the API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return m.withStore(cmd, f.serverFlags, func(ctx context.Context, st koshin.Store) error {
				return m.adminPasswd(ctx, st, f)
			})
		},
	}
	addAdminFlags(c, &f)
	c.Flags().BoolVar(&f.removeTOTP, "remove-totp", false, "also remove the operator's second factor")
	return c
}

func addAdminFlags(c *cobra.Command, f *adminFlags) {
	c.Flags().StringVar(&f.config, "config", "", "server configuration `FILE` (YAML)")
	c.Flags().StringVar(&f.dataDir, "data-dir", "", "server data `DIR`")
	c.Flags().StringVar(&f.name, "name", "", "operator `NAME`")
	c.Flags().BoolVar(&f.stdin, "password-stdin", false, "read the password from standard input")
	c.MarkFlagRequired("name")
}

// withStore opens the server's database for fn.
func (m *Main) withStore(cmd *cobra.Command, f serverFlags, fn func(context.Context, koshin.Store) error) error {
	cfg, err := m.serverConfig(cmd, f)
	if err != nil {
		return err
	}
	if cfg.DataDir == "" {
		return usagef("--data-dir is required")
	}
	if err := cfg.resolve(); err != nil {
		return err
	}
	db, err := openStore(cmd.Context(), &cfg, m.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(cmd.Context(), db)
}

// cliPrincipal is the audit principal of changes made from this command.
const cliPrincipal = "cli:koshin-admin"

func (m *Main) adminCreate(ctx context.Context, st koshin.Store, f adminFlags) error {
	role := koshin.Role(f.role)
	if err := role.Validate(); err != nil {
		return usageError{err}
	}
	pw, generated, err := m.newPassword(f)
	if err != nil {
		return err
	}
	err = createOperator(ctx, st, f.name, role, pw, password.Default)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "created operator %s (%s)\n", f.name, role)
	if generated {
		fmt.Fprintf(m.Stdout, "password: %s\n(shown once: store it in a password manager; log in and change it)\n", pw)
	}
	return nil
}

// createOperator validates the password against the policy, hashes it and
// stores the operator, recording the change in the audit log.
func createOperator(ctx context.Context, st koshin.Store, name string, role koshin.Role, pw string, p password.Params) error {
	if err := password.Check(name, pw); err != nil {
		return err
	}
	h, err := p.Hash(pw)
	if err != nil {
		return err
	}
	err = st.CreateOperator(ctx, &koshin.Operator{Name: name, Role: role, PasswordHash: h})
	audit := &koshin.AuditEntry{Principal: cliPrincipal, Action: "operator.create", Target: "operator:" + name,
		Result: koshin.AuditOK, Detail: "role " + string(role)}
	if err != nil {
		audit.Result, audit.Detail = koshin.AuditFailed, koshin.ErrorMessage(err)
	}
	if aerr := st.AppendAudit(ctx, audit); aerr != nil && err == nil {
		return fmt.Errorf("operator created, but the audit entry failed: %w", aerr)
	}
	return err
}

func (m *Main) adminPasswd(ctx context.Context, st koshin.Store, f adminFlags) error {
	pw, generated, err := m.newPassword(f)
	if err != nil {
		return err
	}
	if err := password.Check(f.name, pw); err != nil {
		return err
	}
	h, err := password.Default.Hash(pw)
	if err != nil {
		return err
	}
	upd := koshin.OperatorUpdate{PasswordHash: &h}
	if f.removeTOTP {
		upd.TOTPSecret = &[]byte{}
	}
	_, err = st.UpdateOperator(ctx, f.name, upd)
	audit := &koshin.AuditEntry{Principal: cliPrincipal, Action: "operator.password", Target: "operator:" + f.name, Result: koshin.AuditOK}
	if err != nil {
		audit.Result, audit.Detail = koshin.AuditFailed, koshin.ErrorMessage(err)
	}
	st.AppendAudit(ctx, audit)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "password of %s changed\n", f.name)
	if generated {
		fmt.Fprintf(m.Stdout, "password: %s\n(shown once)\n", pw)
	}
	return nil
}

// newPassword reads one line from stdin or generates a random password.
func (m *Main) newPassword(f adminFlags) (pw string, generated bool, err error) {
	if !f.stdin {
		return randomPassword(f.name), true, nil
	}
	line, err := bufio.NewReader(io.LimitReader(m.Stdin, password.MaxLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, err
	}
	return strings.TrimRight(line, "\r\n"), false, nil
}

// randomPassword is 256 random bits, never derived from anything (EN 303
// 645 5.1-2), regenerated in the unlikely case it contains the name.
func randomPassword(name string) string {
	for {
		pw := koshin.NewSecret()
		if password.Check(name, pw) == nil {
			return pw
		}
	}
}
