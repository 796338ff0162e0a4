package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/pki"
)

// Pre-authorisation CSV columns. The header row is required and names
// them; serial, hardware_id and public_key are required, group and tags
// optional, in any order:
//
//	serial,hardware_id,public_key,group,tags
//	SN-0001,board-a,MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...,plant-7,region=eu;line=3
//
// public_key is the standard base64 of the device key's PKIX DER encoding
// (what `openssl pkey -pubout -outform DER | base64 -w0` prints); tags are
// separated by semicolons.
var (
	preauthRequired = []string{"serial", "hardware_id", "public_key"}
	preauthColumns  = append(slices.Clone(preauthRequired), "group", "tags")
)

// parsePreauthCSV parses and validates an upload. Every error names the
// line, so a factory can fix its export.
func parsePreauthCSV(data []byte) ([]*koshin.PreAuthorization, error) {
	rd := csv.NewReader(bytes.NewReader(data))
	rd.ReuseRecord = true
	header, err := rd.Read()
	if err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "The CSV needs a header row naming serial, hardware_id and public_key.")
	}
	cols, err := preauthHeader(header)
	if err != nil {
		return nil, err
	}
	var out []*koshin.PreAuthorization
	for line := 2; ; line++ {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, koshin.Errorf(koshin.EINVALID, "CSV line %d: %s.", line, csvReason(err))
		}
		if len(out) == koshin.MaxPreAuthorizations {
			return nil, koshin.Errorf(koshin.EINVALID, "At most %d devices per upload.", koshin.MaxPreAuthorizations)
		}
		p, err := preauthRow(rec, cols)
		if err != nil {
			return nil, koshin.Errorf(koshin.EINVALID, "CSV line %d: %s", line, koshin.ErrorMessage(err))
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, koshin.Errorf(koshin.EINVALID, "The CSV holds no devices.")
	}
	return out, nil
}

// preauthHeader maps column names to positions.
func preauthHeader(header []string) (map[string]int, error) {
	cols := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(preauthColumns, h) {
			return nil, koshin.Errorf(koshin.EINVALID, "Unknown CSV column %q; columns are %s.", clip(h, 32), strings.Join(preauthColumns, ", "))
		}
		if _, dup := cols[h]; dup {
			return nil, koshin.Errorf(koshin.EINVALID, "CSV column %q appears twice.", h)
		}
		cols[h] = i
	}
	for _, c := range preauthRequired {
		if _, ok := cols[c]; !ok {
			return nil, koshin.Errorf(koshin.EINVALID, "The CSV needs a %q column.", c)
		}
	}
	return cols, nil
}

func preauthRow(rec []string, cols map[string]int) (*koshin.PreAuthorization, error) {
	get := func(name string) string {
		if i, ok := cols[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	key, err := base64.StdEncoding.Strict().DecodeString(get("public_key"))
	if err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "public_key must be standard base64 of PKIX DER.")
	}
	if err := pki.CheckDeviceKey(key); err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "public_key: %v.", err)
	}
	p := &koshin.PreAuthorization{Serial: get("serial"), HardwareID: get("hardware_id"), PublicKey: key, Group: get("group")}
	if t := get("tags"); t != "" {
		p.Tags = koshin.CleanTags(strings.Split(t, ";"))
	}
	return p, p.Validate()
}

// csvReason explains a csv.Reader error without echoing the input.
func csvReason(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return "unreadable"
}
