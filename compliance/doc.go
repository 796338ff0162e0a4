// Package compliance computes conformance statements for a product built on
// koshin: ETSI EN 303 645 (Annex B table B.1), the CCDS software-update
// guideline, the OTA IoT Trust Framework, JC-STAR ★1 and a UK PSTI
// statement of compliance.
//
// Three inputs feed a report, and every answer says which one it rests on:
//
//   - T: an automated koshin test exercises the capability. The mapping from
//     capability to Go test functions is data (catalog/evidence.yaml), and a
//     test of this package checks that each named function exists.
//   - F: the fleet is observed doing it (Fleet, FleetFacts): share of devices
//     with automatic updates on, poll schedule, refused updates, rollbacks,
//     lockouts, patch latency per advisory.
//   - D: the manufacturer declares it in a product profile (Profile): model
//     designation, support period, disclosure contact, which conditions of
//     EN 303 645 apply, statements and justifications.
//
// The catalogues (catalog/*.yaml) carry requirement IDs, statuses and levels
// exactly as the standards define them, with texts in koshin's own words.
// Report evaluates one catalogue against a profile and fleet; Render writes
// the result as Markdown, HTML or JSON. docs/compliance.md describes the
// workflow with an assessor and the JSON schema.
package compliance
