package compliance

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ReportSchema names the JSON report format; it changes only when a field
// changes meaning or disappears (docs/compliance.md).
const ReportSchema = "koshin.compliance.report/v1"

// Support is the table B.1 "Support" column.
type Support string

const (
	SupportYes Support = "Y"
	SupportNo  Support = "N"
	SupportNA  Support = "N/A"
)

// Options are the inputs of a report that are not data.
type Options struct {
	// Now is the report's date; it decides whether the support period has
	// ended. Required, so that a report can be reproduced.
	Now time.Time
	// Edition selects the EN 303 645 numbering ("" or V2.1.1, or V3.1.3).
	Edition string
	// Generator names the tool and version, e.g. "koshin v1.2.0".
	Generator string
}

// Model is a computed conformance statement, ready to render.
type Model struct {
	Schema      string            `json:"schema"`
	Standard    Standard          `json:"standard"`
	Title       string            `json:"title"`
	Edition     string            `json:"edition"`
	Catalogue   CatalogueInfo     `json:"catalogue"`
	GeneratedAt time.Time         `json:"generated_at"`
	Generator   string            `json:"generator"`
	Product     ProductInfo       `json:"product"`
	Fleet       *FleetInfo        `json:"fleet"`
	Summary     Summary           `json:"summary"`
	Conditions  []ConditionResult `json:"conditions"`
	Flags       []Flag            `json:"flags"`
	Groups      []GroupResult     `json:"groups"`
	Evidence    []EvidenceResult  `json:"evidence"`
}

// CatalogueInfo identifies the data the report was computed from.
type CatalogueInfo struct {
	DataVersion         int    `json:"data_version"`
	EvidenceDataVersion int    `json:"evidence_data_version"`
	Source              string `json:"source"`
	Note                string `json:"note"`
}

// ProductInfo repeats the profile's declarations a reader needs first.
type ProductInfo struct {
	Model               string `json:"model"`
	Manufacturer        string `json:"manufacturer"`
	Address             string `json:"address"`
	DocumentationURL    string `json:"documentation_url"`
	SupportEnd          string `json:"support_end"`
	SupportPublishedAt  string `json:"support_published_at"`
	DisclosureContact   string `json:"disclosure_contact"`
	DisclosurePolicyURL string `json:"disclosure_policy_url"`
	AcknowledgeDays     int    `json:"acknowledge_days"`
	StatusUpdateDays    int    `json:"status_update_days"`
	RemediationDays     int    `json:"remediation_target_days"`
}

// FleetInfo says which fleet observations the F evidence comes from.
type FleetInfo struct {
	ObservedAt time.Time `json:"observed_at"`
	WindowDays int       `json:"window_days"`
	Devices    int       `json:"devices"`
}

// Summary counts the rows by answer.
type Summary struct {
	Requirements    int `json:"requirements"`
	Yes             int `json:"yes"`
	No              int `json:"no"`
	NotApplicable   int `json:"not_applicable"`
	Open            int `json:"open"`
	MandatoryNotMet int `json:"mandatory_not_met"`
	Flags           int `json:"flags"`
}

// GroupResult is one clause or category of the report.
type GroupResult struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Rows  []Row  `json:"rows"`
}

// Row is one requirement's answer: a line of table B.1 or its equivalent.
type Row struct {
	ID        string  `json:"id"`
	Text      string  `json:"text"`
	Status    string  `json:"status"`
	Mandatory bool    `json:"mandatory"`
	Support   Support `json:"support"`
	// Open marks an N that only means "not evidenced yet".
	Open     bool     `json:"open"`
	Detail   string   `json:"detail"`
	Kinds    []Kind   `json:"evidence_kinds"`
	Evidence []string `json:"evidence"`
	Flagged  bool     `json:"flagged"`
	Note     string   `json:"note"`
	Change   string   `json:"edition_change"`
}

// EvidenceResult is one row of the evidence appendix.
type EvidenceResult struct {
	ID          string    `json:"id"`
	Kind        Kind      `json:"kind"`
	Claim       string    `json:"claim"`
	Result      Result    `json:"result"`
	Observation string    `json:"observation"`
	Tests       []TestRef `json:"tests"`
	// Source is the fleet fact or profile field the row reads.
	Source       string   `json:"source"`
	Requirements []string `json:"requirements"`
	flag         string
}

// Flag is a contradiction or warning found while evaluating evidence.
type Flag struct {
	Evidence     string   `json:"evidence"`
	Message      string   `json:"message"`
	Requirements []string `json:"requirements"`
}

// Report evaluates one standard's catalogue for the product described by
// p, with fleet observations from fleet (nil: none yet) and the evidence
// catalogue ev (nil: the embedded one).
func Report(ctx context.Context, std Standard, p *Profile, fleet Fleet, ev *Evidence, opt Options) (*Model, error) {
	if p == nil || opt.Now.IsZero() {
		return nil, errors.New("report needs a profile and a date")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if ev == nil {
		d, err := shared()
		if err != nil {
			return nil, err
		}
		ev = d.evidence
	}
	facts, err := fleetFacts(ctx, fleet)
	if err != nil {
		return nil, err
	}
	if std == PSTI {
		return reportPSTI(p, facts, ev, opt)
	}
	cat, err := sharedCatalogue(std, opt.Edition)
	if err != nil {
		return nil, err
	}
	return evaluate(cat, p, facts, ev, opt)
}

func fleetFacts(ctx context.Context, fleet Fleet) (*FleetFacts, error) {
	if fleet == nil {
		return nil, nil
	}
	f, err := fleet.Facts(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet facts: %w", err)
	}
	// Validated here too: a server's Fleet must not feed the checks
	// impossible numbers (90 % reached before 50 %, negative counts).
	return f, f.Validate()
}

func newModel(cat *Catalogue, p *Profile, facts *FleetFacts, ev *Evidence, opt Options) *Model {
	m := &Model{
		Schema: ReportSchema, Standard: cat.Standard, Title: cat.Title, Edition: cat.Edition,
		Catalogue: CatalogueInfo{
			DataVersion: cat.DataVersion, EvidenceDataVersion: ev.DataVersion,
			Source: cat.Source, Note: cat.Note,
		},
		GeneratedAt: opt.Now.UTC().Truncate(time.Second), Generator: opt.Generator,
		Product: productInfo(p),
		// Empty slices, not null: JSON consumers can iterate without checks.
		Conditions: []ConditionResult{}, Flags: []Flag{}, Groups: []GroupResult{}, Evidence: []EvidenceResult{},
	}
	if facts != nil {
		m.Fleet = &FleetInfo{ObservedAt: facts.ObservedAt.UTC(), WindowDays: facts.WindowDays, Devices: facts.Devices}
	}
	return m
}

func productInfo(p *Profile) ProductInfo {
	return ProductInfo{
		Model: p.Product.Model, Manufacturer: p.Product.Manufacturer, Address: p.Product.Address,
		DocumentationURL: p.Product.DocumentationURL,
		SupportEnd:       p.SupportPeriod.End, SupportPublishedAt: p.SupportPeriod.PublishedAt,
		DisclosureContact: p.Disclosure.Contact, DisclosurePolicyURL: p.Disclosure.PolicyURL,
		AcknowledgeDays: p.Disclosure.AcknowledgeDays, StatusUpdateDays: p.Disclosure.StatusUpdateDays,
		RemediationDays: p.RemediationDays(),
	}
}

// summarise fills Summary from the rows and flags.
func (m *Model) summarise() {
	s := Summary{Flags: len(m.Flags)}
	for _, row := range m.Rows() {
		s.Requirements++
		switch row.Support {
		case SupportYes:
			s.Yes++
		case SupportNA:
			s.NotApplicable++
		default:
			s.No++
			if row.Open {
				s.Open++
			}
			if row.Mandatory {
				s.MandatoryNotMet++
			}
		}
	}
	m.Summary = s
}

// Rows lists every row in report order.
func (m *Model) Rows() []Row {
	var rows []Row
	for _, g := range m.Groups {
		rows = append(rows, g.Rows...)
	}
	return rows
}

// Row finds a row by requirement ID.
func (m *Model) Row(id string) (Row, bool) {
	for _, r := range m.Rows() {
		if r.ID == id {
			return r, true
		}
	}
	return Row{}, false
}
