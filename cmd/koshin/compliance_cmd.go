package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin/compliance"
	"github.com/koshin-ota/koshin/internal/atomicfile"
)

func init() {
	register(newComplianceCmdFor)
}

// newComplianceCmd is `koshin compliance`: conformance statements computed
// from the product profile (D), koshin's tests (T) and fleet facts (F).
// docs/compliance.md describes the workflow.
func newComplianceCmd() *cobra.Command { return newComplianceCmdFor(NewMain(os.Stdout, os.Stderr)) }

// newComplianceCmdFor dates reports with m.Now, which tests fix, and reads
// fleet facts from a server or store as m's environment says.
func newComplianceCmdFor(m *Main) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compliance",
		Short: "Conformance statements for EN 303 645, CCDS, OTA, JC-STAR and UK PSTI",
		Long: "Computes conformance statements from a product profile declared by the manufacturer,\n" +
			"koshin's own tests and observations of the fleet. See docs/compliance.md.",
	}
	cmd.AddCommand(newComplianceInitCmd(), newComplianceReportCmd(m), newSecurityTxtCmd(m))
	return cmd
}

func newComplianceInitCmd() *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a documented product profile to fill in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "-" {
				_, err := cmd.OutOrStdout().Write(compliance.ProfileTemplate())
				return err
			}
			if err := writeNew(out, compliance.ProfileTemplate(), force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: replace every CHANGE-ME, answer every empty question, then run\n"+
				"  koshin compliance report --standard en303645 --profile %s\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "koshin-profile.yaml", "file to write, - for standard output")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

// writeNew writes a file atomically, refusing to replace an existing one
// unless forced: a filled-in profile is work that init must not destroy.
func writeNew(name string, data []byte, force bool) error {
	if !force {
		if _, err := os.Lstat(name); err == nil {
			return fmt.Errorf("%s exists; use --force to overwrite it", name)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return atomicfile.WriteFile(name, data, 0o644)
}

// complianceReportFlags are the inputs of `koshin compliance report`.
type complianceReportFlags struct {
	standard, format, edition string
	profile, fleet, out       string
	fleetFrom                 fleetSource
}

func newComplianceReportCmd(m *Main) *cobra.Command {
	var f complianceReportFlags
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Compute a conformance statement",
		Long: `Computes the statement for one standard from the profile and, optionally, fleet
observations (evidence kind F), and writes it as Markdown, HTML or JSON.

Fleet observations come from one of:
  --fleet FILE        fleet facts JSON (docs/compliance.md), e.g. saved earlier
  --server URL        a running koshin server (GET /api/v1/compliance/fleet), with an
                      API token from $` + envToken + ` or --token-file and its CA from --ca
  --store sqlite:DIR  a server's SQLite data directory (or its koshin.db) read directly;
                      --poll-interval and --poll-jitter give the server's settings
Without any, fleet evidence is reported missing.`,
		Example: `  koshin compliance report --standard en303645 --profile profile.yaml --server https://koshin.example:8444 --ca server-ca.crt
  koshin compliance report --standard psti --profile profile.yaml --store sqlite:/var/lib/koshin --format html -o psti.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runComplianceReport(cmd.Context(), m, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.standard, "standard", "", "en303645, ccds, ota, jcstar or psti (required)")
	fl.StringVar(&f.format, "format", "md", "md, html or json")
	fl.StringVar(&f.edition, "edition", "", "EN 303 645 numbering: V2.1.1 (default) or V3.1.3")
	fl.StringVar(&f.profile, "profile", "", "product profile YAML, from `koshin compliance init` (required)")
	fl.StringVar(&f.fleet, "fleet", "", "fleet facts JSON `FILE`")
	f.fleetFrom.addFlags(fl)
	fl.StringVarP(&f.out, "out", "o", "-", "output file, - for standard output")
	cobra.CheckErr(cmd.MarkFlagRequired("standard"))
	cobra.CheckErr(cmd.MarkFlagRequired("profile"))
	return cmd
}

func runComplianceReport(ctx context.Context, m *Main, f complianceReportFlags, stdout io.Writer) error {
	now := m.Now()
	std, err := compliance.ParseStandard(f.standard)
	if err != nil {
		return err
	}
	format, err := compliance.ParseFormat(f.format)
	if err != nil {
		return err
	}
	profile, err := readProfile(f.profile)
	if err != nil {
		return err
	}
	fleet, err := f.fleetFrom.open(ctx, m, f.fleet)
	if err != nil {
		return err
	}
	model, err := compliance.Report(ctx, std, profile, fleet, nil,
		compliance.Options{Now: now, Edition: f.edition, Generator: koshinVersion()})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := compliance.Render(&buf, model, format); err != nil {
		return err
	}
	if f.out == "-" {
		_, err = stdout.Write(buf.Bytes())
		return err
	}
	return atomicfile.WriteFile(f.out, buf.Bytes(), 0o644)
}

func readProfile(name string) (*compliance.Profile, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	p, err := compliance.LoadProfile(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// readFleet returns nil without a file: the report then says which
// answers wait for fleet data instead of guessing them.
func readFleet(name string) (compliance.Fleet, error) {
	if name == "" {
		return nil, nil
	}
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	facts, err := compliance.ReadFleetFacts(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return compliance.StaticFleet{F: *facts}, nil
}

// koshinVersion names the generator in reports, so an assessor can match
// the T evidence to the koshin build whose tests it cites.
func koshinVersion() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return "koshin " + v
}
