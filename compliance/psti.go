package compliance

import (
	"slices"
	"strings"
)

// reportPSTI answers the PSTI requirements through the EN 303 645
// provisions they correspond to, so both reports always agree.
func reportPSTI(p *Profile, facts *FleetFacts, ev *Evidence, opt Options) (*Model, error) {
	cat, err := sharedCatalogue(PSTI, "")
	if err != nil {
		return nil, err
	}
	en, err := sharedCatalogue(EN303645, "")
	if err != nil {
		return nil, err
	}
	enModel, err := evaluate(en, p, facts, ev, opt)
	if err != nil {
		return nil, err
	}
	m := newModel(cat, p, facts, ev, opt)
	cited := map[string][]string{} // EN evidence ID → PSTI requirements
	for _, g := range cat.Groups {
		gr := GroupResult{ID: g.ID, Title: g.Title, Rows: []Row{}}
		for _, r := range g.Requirements {
			row := refRow(r, enModel)
			for _, id := range row.Evidence {
				cited[id] = appendOnce(cited[id], r.ID)
			}
			gr.Rows = append(gr.Rows, row)
		}
		m.Groups = append(m.Groups, gr)
	}
	m.Evidence, m.Flags = citedEvidence(enModel, cited)
	m.summarise()
	return m, nil
}

// refRow combines the EN rows r refers to: N/A when all are N/A, N when
// any is N, otherwise Y.
func refRow(r Requirement, en *Model) Row {
	row := Row{ID: r.ID, Text: r.DisplayText(), Status: r.Label(), Mandatory: r.Mandatory(),
		Note:    "Evaluated through EN 303 645 " + strings.Join(r.Refs, ", ") + ".",
		Support: SupportNA, Kinds: []Kind{}, Evidence: []string{}}
	var details []string
	open := true
	for _, id := range r.Refs {
		enRow, _ := en.Row(id)
		details = append(details, id+": "+enRow.Detail)
		row.Flagged = row.Flagged || enRow.Flagged
		for _, k := range enRow.Kinds {
			if !slices.Contains(row.Kinds, k) {
				row.Kinds = append(row.Kinds, k)
			}
		}
		for _, e := range enRow.Evidence {
			row.Evidence = appendOnce(row.Evidence, e)
		}
		switch {
		case enRow.Support == SupportNo:
			row.Support, open = SupportNo, open && enRow.Open
		case enRow.Support == SupportYes && row.Support == SupportNA:
			row.Support = SupportYes
		}
	}
	row.Open = row.Support == SupportNo && open
	row.Detail = strings.Join(details, " ")
	slices.SortFunc(row.Kinds, func(a, b Kind) int { return strings.Index("TFD", string(a)) - strings.Index("TFD", string(b)) })
	return row
}

// citedEvidence keeps the EN evidence rows and flags the PSTI rows cite,
// renaming the citing requirements to PSTI IDs.
func citedEvidence(en *Model, cited map[string][]string) ([]EvidenceResult, []Flag) {
	rows, flags := []EvidenceResult{}, []Flag{}
	for _, res := range en.Evidence {
		if reqs, ok := cited[res.ID]; ok {
			res.Requirements = reqs
			rows = append(rows, res)
		}
	}
	for _, f := range en.Flags {
		if reqs, ok := cited[f.Evidence]; ok {
			f.Requirements = reqs
			flags = append(flags, f)
		}
	}
	return rows, flags
}
