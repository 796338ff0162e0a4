package compliance

import (
	_ "embed"
	"html/template"
	"io"
	"strings"
)

//go:embed report.html.tmpl
var reportHTML string

// htmlReport is parsed once; html/template escapes every value by context,
// so profile and fleet text cannot inject markup or script.
var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"heading":      (*Model).heading,
	"readyToSign":  (*Model).readyToSign,
	"ref":          func(m *Model) string { r, _, _ := m.columns(); return r },
	"statusCol":    func(m *Model) string { _, s, _ := m.columns(); return s },
	"withText":     func(m *Model) bool { _, _, t := m.columns(); return t },
	"fleetLine":    fleetLine,
	"orMissing":    orMissing,
	"yesNo":        yesNo,
	"kindList":     kindList,
	"rowDetail":    rowDetail,
	"testList":     testList,
	"shows":        shows,
	"join":         strings.Join,
	"supportClass": func(s Support) string { return strings.ReplaceAll(string(s), "/", "") },
	"pstiIntro":    func() string { return pstiIntro },
	"pstiReady":    func() string { return pstiReady },
	"pstiNotReady": func() string { return pstiNotReady },
}).Parse(reportHTML))

func renderHTML(w io.Writer, m *Model) error {
	return htmlReport.Execute(w, m)
}
