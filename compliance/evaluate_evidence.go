package compliance

import (
	"fmt"
	"slices"
	"strings"
)

// evidence evaluates row id once and records that requirement req cites it.
func (e *evaluator) evidence(id, req string) (*EvidenceResult, error) {
	if res, ok := e.results[id]; ok {
		res.Requirements = appendOnce(res.Requirements, req)
		return res, nil
	}
	def, ok := e.ev.Row(id)
	if !ok {
		return nil, fmt.Errorf("unknown evidence %q", id)
	}
	res := &EvidenceResult{ID: def.ID, Kind: def.Kind, Claim: def.Claim, Tests: []TestRef{}, Requirements: []string{req}}
	var o outcome
	switch def.Kind {
	case KindTest:
		o = testOutcome(def, res)
	case KindFleet:
		res.Source = "fleet: " + def.Fact
		o = e.factOutcome(def.Fact)
	case KindDeclared:
		res.Source = "profile: " + def.Field
		o = declaredChecks[def.Field](e.p, e.opt.Now)
	}
	res.Result, res.Observation, res.flag = o.result, o.observation, o.flag
	e.remember(res)
	return res, nil
}

// testOutcome passes a T row: the test suite of this koshin build contains
// the named tests (TestEvidenceTestsExist keeps the names honest).
func testOutcome(def EvidenceDef, res *EvidenceResult) outcome {
	n := 0
	var pkgs []string
	for _, t := range def.Tests {
		res.Tests = append(res.Tests, TestRef{Package: t.ImportPath(), Names: t.Names})
		pkgs = append(pkgs, t.Package)
		n += len(t.Names)
	}
	res.Source = "tests: " + strings.Join(pkgs, ", ")
	return pass(fmt.Sprintf("%d test functions in koshin's suite exercise this", n))
}

func (e *evaluator) factOutcome(fact string) outcome {
	if e.facts == nil {
		return missing("no fleet data supplied")
	}
	return factChecks[fact](e.p, e.facts)
}

// note records a manufacturer's statement or justification as D evidence.
func (e *evaluator) note(kind, req, text string, r Result) *EvidenceResult {
	res := &EvidenceResult{
		ID: kind + ":" + req, Kind: KindDeclared, Claim: "Manufacturer's " + kind + " for " + req,
		Result: r, Observation: text, Tests: []TestRef{}, Source: kind, Requirements: []string{req},
	}
	e.remember(res)
	return res
}

func (e *evaluator) remember(res *EvidenceResult) {
	e.results[res.ID] = res
	e.order = append(e.order, res.ID)
}

// appendix returns the evidence rows in first-use order and the flags they
// raised.
func (e *evaluator) appendix() ([]EvidenceResult, []Flag) {
	rows, flags := []EvidenceResult{}, []Flag{}
	for _, id := range e.order {
		res := e.results[id]
		rows = append(rows, *res)
		if res.flag != "" {
			flags = append(flags, Flag{Evidence: res.ID, Message: res.flag, Requirements: res.Requirements})
		}
	}
	return rows, flags
}

// applyRules computes rule-based rows. "justifications" is EN 303 645
// provision 4-1: every recommendation answered N needs a recorded reason.
func (e *evaluator) applyRules(m *Model) {
	var missingIDs, justified []string
	for _, row := range m.Rows() {
		r, _ := e.cat.Requirement(row.ID)
		if !r.Recommended() || row.Support != SupportNo {
			continue
		}
		if _, ok := e.p.Justification(e.std, row.ID); ok {
			justified = append(justified, row.ID)
		} else {
			missingIDs = append(missingIDs, row.ID)
		}
	}
	for gi := range m.Groups {
		for ri := range m.Groups[gi].Rows {
			row := &m.Groups[gi].Rows[ri]
			if r, _ := e.cat.Requirement(row.ID); r.Rule == "justifications" {
				justificationRow(row, missingIDs, justified)
			}
		}
	}
}

func justificationRow(row *Row, missingIDs, justified []string) {
	row.Kinds = []Kind{KindDeclared}
	switch {
	case len(missingIDs) > 0:
		row.Support = SupportNo
		row.Detail = "No justification recorded for recommendations answered N: " + strings.Join(missingIDs, ", ") + "."
	case len(justified) > 0:
		row.Support = SupportYes
		row.Detail = "Every recommendation not met has a recorded justification: " + strings.Join(justified, ", ") + "."
	default:
		row.Support = SupportYes
		row.Detail = "Every recommendation is met or not applicable."
	}
}

func appendOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
