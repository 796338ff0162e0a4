package compliance

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// evaluator computes one catalogue's rows. Evidence rows are evaluated once
// and shared by every requirement that cites them.
type evaluator struct {
	std     Standard
	cat     *Catalogue
	p       *Profile
	facts   *FleetFacts // nil: no fleet data
	ev      *Evidence
	opt     Options
	conds   map[int]ConditionResult
	results map[string]*EvidenceResult
	order   []string // evidence IDs in first-use order
}

func evaluate(cat *Catalogue, p *Profile, facts *FleetFacts, ev *Evidence, opt Options) (*Model, error) {
	conds, err := evaluateConditions(cat, p)
	if err != nil {
		return nil, err
	}
	e := &evaluator{std: cat.Standard, cat: cat, p: p, facts: facts, ev: ev, opt: opt,
		conds: map[int]ConditionResult{}, results: map[string]*EvidenceResult{}}
	for _, c := range conds {
		e.conds[c.Number] = c
	}
	m := newModel(cat, p, facts, ev, opt)
	m.Conditions = append(m.Conditions, conds...)
	for _, g := range cat.Groups {
		gr := GroupResult{ID: g.ID, Title: g.Title, Rows: []Row{}}
		for i := range g.Requirements {
			row, err := e.row(&g.Requirements[i])
			if err != nil {
				return nil, err
			}
			gr.Rows = append(gr.Rows, row)
		}
		m.Groups = append(m.Groups, gr)
	}
	e.applyRules(m)
	m.Evidence, m.Flags = e.appendix()
	m.summarise()
	return m, nil
}

func (e *evaluator) row(r *Requirement) (Row, error) {
	row := Row{ID: r.ID, Text: r.DisplayText(), Status: r.Label(), Mandatory: r.Mandatory(),
		Note: r.Note, Change: r.Change, Kinds: []Kind{}, Evidence: []string{}}
	if r.Rule != "" {
		return row, nil // computed by applyRules once every other row is known
	}
	if why := e.notApplicable(r); why != "" {
		row.Support, row.Detail, row.Kinds = SupportNA, why, []Kind{KindDeclared}
		return row, nil
	}
	if j, ok := e.p.Justification(e.std, r.ID); ok {
		res := e.note("justification", r.ID, j, ResultInfo)
		row.Support, row.Detail, row.Kinds = SupportNo, "Not met. Justification: "+j, []Kind{KindDeclared}
		row.Evidence = []string{res.ID}
		return row, nil
	}
	var mapped []*EvidenceResult
	for _, id := range r.Evidence {
		res, err := e.evidence(id, r.ID)
		if err != nil {
			return row, fmt.Errorf("%s: %w", r.ID, err)
		}
		mapped = append(mapped, res)
	}
	var stmt *EvidenceResult
	if s, ok := e.p.Statement(e.std, r.ID); ok {
		stmt = e.note("statement", r.ID, s, ResultPass)
	}
	decide(&row, r, mapped, stmt)
	return row, nil
}

// notApplicable explains which condition does not hold, or returns "".
// Table B.1 allows N/A only for conditional provisions, so only their
// conditions are consulted.
func (e *evaluator) notApplicable(r *Requirement) string {
	for _, n := range r.Conditions {
		if c := e.conds[n]; !c.Holds {
			return fmt.Sprintf("Not applicable: condition %d (%s) does not hold for this product (profile: %s).",
				n, c.Text, c.Fields)
		}
	}
	return ""
}

// decide sets Support and Detail from the evidence. A requirement is met
// when nothing contradicts it, koshin's evidence (if any is mapped) passes
// or a statement replaces it, and a statement is present where koshin
// covers only the update path.
func decide(row *Row, r *Requirement, mapped []*EvidenceResult, stmt *EvidenceResult) {
	all := mapped
	if stmt != nil {
		all = append(slices.Clip(mapped), stmt)
	}
	for _, res := range all {
		row.Evidence = append(row.Evidence, res.ID)
		row.Flagged = row.Flagged || res.flag != ""
	}
	failed := withResult(mapped, ResultFail)
	passed := withResult(mapped, ResultPass)
	koshinOK := len(passed) > 0 || len(mapped) == 0 || (stmt != nil && !r.NeedsStatement)
	stmtOK := stmt != nil || (!r.NeedsStatement && len(mapped) > 0)
	switch {
	case len(failed) > 0:
		row.Support, row.Kinds = SupportNo, kinds(failed)
		row.Detail = "Not met: " + sentences(failed, false)
	case koshinOK && stmtOK:
		supporting := passed
		if stmt != nil {
			supporting = append(slices.Clip(passed), stmt)
		}
		row.Support, row.Kinds = SupportYes, kinds(supporting)
		row.Detail = sentences(supporting, true)
	default:
		row.Support, row.Open, row.Kinds = SupportNo, true, kinds(passed)
		row.Detail = openDetail(mapped, passed, koshinOK, stmtOK)
	}
}

// openDetail says what is missing before the requirement can be answered.
func openDetail(mapped, passed []*EvidenceResult, koshinOK, stmtOK bool) string {
	var parts []string
	if !koshinOK {
		parts = append(parts, "Not evidenced yet: "+sentences(mapped, false))
	}
	switch {
	case stmtOK:
	case len(mapped) == 0:
		parts = append(parts, "koshin cannot observe this; the profile needs a statement or, for a recommendation, a justification.")
	case len(passed) > 0:
		parts = append(parts, "koshin evidences its own part: "+sentences(passed, true)+
			" The profile needs a statement for the rest of the product.")
	default:
		parts = append(parts, "The profile also needs a statement for the rest of the product.")
	}
	return strings.Join(parts, " ")
}

func withResult(rs []*EvidenceResult, want Result) []*EvidenceResult {
	var out []*EvidenceResult
	for _, r := range rs {
		if r.Result == want {
			out = append(out, r)
		}
	}
	return out
}

// kinds lists the distinct kinds of rs in T, F, D order.
func kinds(rs []*EvidenceResult) []Kind {
	out := []Kind{}
	for _, k := range []Kind{KindTest, KindFleet, KindDeclared} {
		if slices.ContainsFunc(rs, func(r *EvidenceResult) bool { return r.Kind == k }) {
			out = append(out, k)
		}
	}
	return out
}

// sentences joins what each row shows: a T row's claim (what its tests
// prove), an F or D row's observation.
func sentences(rs []*EvidenceResult, useClaims bool) string {
	var parts []string
	for _, r := range rs {
		s := r.Observation
		if useClaims && r.Kind == KindTest {
			s = r.Claim
		}
		if r.Source == "statement" {
			s = "Manufacturer: " + s
		}
		parts = append(parts, capitalise(strings.TrimSuffix(s, "."))+".")
	}
	return strings.Join(parts, " ")
}

// capitalise upper-cases the first letter, so that observations written as
// fragments ("4 lockouts in 30 days") read as sentences in a detail.
func capitalise(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
