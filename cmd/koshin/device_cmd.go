package main

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin"
)

func init() { register((*Main).deviceCmd) }

// deviceCmd manages enrollment and the device registry through the
// management API.
func (m *Main) deviceCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:   "device",
		Short: "Enroll devices (pre-authorisation, tokens) and manage the registry",
		Long: `Manage devices through the management API. The API token comes from
$KOSHIN_TOKEN (or --token-file), the server from $KOSHIN_SERVER (or
--server), and the server CA to trust from $KOSHIN_CA (or --ca).`,
	}
	addAPIFlags(c, &f)
	token := &cobra.Command{Use: "token", Short: "One-time enrollment tokens"}
	token.AddCommand(m.deviceTokenCreateCmd(&f), m.deviceTokenRevokeCmd(&f))
	c.AddCommand(m.devicePreauthCmd(&f), token, m.deviceListCmd(&f), m.deviceDecommissionCmd(&f))
	return c
}

func (m *Main) devicePreauthCmd(f *apiFlags) *cobra.Command {
	var csvFile string
	c := &cobra.Command{
		Use:   "preauthorize --csv FILE",
		Short: "Upload a factory pre-authorisation list (zero-touch enrollment)",
		Long: `Upload the issuer's list of devices that may enroll without a token.

The CSV has a header row; columns serial, hardware_id and public_key are
required, group and tags (semicolon-separated) optional. public_key is the
standard base64 of the device key's PKIX DER encoding, e.g.
  openssl pkey -in device.key -pubout -outform DER | base64 -w0
The upload is stored whole or not at all (at most 10,000 rows).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(csvFile)
			if err != nil {
				return err
			}
			api, err := m.apiClient(*f)
			if err != nil {
				return err
			}
			var res struct{ Created int }
			if err := api.do(cmd.Context(), "POST", "/api/v1/preauthorizations", rawBody{data, "text/csv"}, &res); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "%d devices pre-authorised\n", res.Created)
			return nil
		},
	}
	c.Flags().StringVar(&csvFile, "csv", "", "pre-authorisation `FILE` (CSV)")
	c.MarkFlagRequired("csv")
	return c
}

func (m *Main) deviceTokenCreateCmd(f *apiFlags) *cobra.Command {
	var group, desc string
	var tags []string
	var expires time.Duration
	c := &cobra.Command{
		Use:   "create",
		Short: "Create a one-time enrollment token (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := m.apiClient(*f)
			if err != nil {
				return err
			}
			req := map[string]any{"description": desc, "group": group, "tags": tags}
			if expires > 0 {
				req["expires_at"] = m.Now().Add(expires).UTC()
			}
			var res struct {
				Token string
				Info  koshin.EnrollmentToken
			}
			if err := api.do(cmd.Context(), "POST", "/api/v1/enrollment-tokens", req, &res); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "token %d expires %s\n%s\n", res.Info.ID, res.Info.ExpiresAt.Format(time.RFC3339), res.Token)
			return nil
		},
	}
	c.Flags().StringVar(&group, "group", "", "`GROUP` the enrolled device joins")
	c.Flags().StringSliceVar(&tags, "tag", nil, "`TAG` the enrolled device gets (repeatable)")
	c.Flags().StringVar(&desc, "description", "", "what the token is for")
	c.Flags().DurationVar(&expires, "expires", 0, "lifetime (default 168h, at most 2160h)")
	return c
}

func (m *Main) deviceTokenRevokeCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an unused enrollment token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usagef("token ID %q is not a number", args[0])
			}
			api, err := m.apiClient(*f)
			if err != nil {
				return err
			}
			return api.do(cmd.Context(), "DELETE", fmt.Sprintf("/api/v1/enrollment-tokens/%d", id), nil, nil)
		},
	}
}

func (m *Main) deviceListCmd(f *apiFlags) *cobra.Command {
	var query string
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "Search the device registry (e.g. --query 'group:plant-7 tag:region=eu')",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := m.apiClient(*f)
			if err != nil {
				return err
			}
			var l struct{ Items []koshin.Device }
			if err := api.do(cmd.Context(), "GET", "/api/v1/devices?limit=1000&q="+url.QueryEscape(query), nil, &l); err != nil {
				return err
			}
			if asJSON {
				return m.printJSON(l.Items)
			}
			w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSERIAL\tHARDWARE\tGROUP\tSTATUS\tLAST SEEN")
			for _, d := range l.Items {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID[:16], d.Serial, d.HardwareID, d.Group, d.Status, seen(d.LastSeenAt))
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&query, "query", "", "search `TERMS`")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func seen(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func (m *Main) deviceDecommissionCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "decommission ID",
		Short: "Retire a device: its certificate stops working, its assignment is cancelled",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := m.apiClient(*f)
			if err != nil {
				return err
			}
			if err := api.do(cmd.Context(), "POST", "/api/v1/devices/"+url.PathEscape(args[0])+"/decommission", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "device %s decommissioned\n", args[0])
			return nil
		},
	}
}
