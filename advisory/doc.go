// Package advisory reads the two documents a koshin release can carry
// besides its payload, so that users and assessors learn what an update
// fixes and what it contains (EN 303 645 5.2-3, 5.3-11; CCDS SSS07; OTA
// items 11 and 39):
//
//   - a security advisory in CSAF 2.0 JSON (OASIS Common Security Advisory
//     Framework): which vulnerabilities (CVE IDs) the release fixes, for
//     which products, how severe they are and what the remediation is;
//   - a software bill of materials in CycloneDX JSON: the components the
//     release is built from.
//
// The release manager signs each document's SHA-256 into the release's
// target (trust.TargetCustom: advisory_sha256, sbom_sha256; `koshin
// release add --advisory FILE --sbom FILE`), the documents are published
// next to the payloads, and the server hands them to devices and
// operators. A device checks a document against the signed digest
// (VerifyDigest) before it shows anything from it to its user, so neither
// the server nor a mirror can change what an update claims to fix.
//
// Both parsers are strict where a mistake would mislead: documents are
// size-limited, duplicate object keys and trailing data are refused, every
// product or component reference must resolve, enumerations and scores
// are checked. CSAF 2.0 is a fixed specification whose schema forbids
// unknown properties, so unknown properties are refused; CycloneDX grows
// with every specification version, so only the fields used here are
// checked and others are left alone. The package imports only the
// standard library, so the device agent can use it.
package advisory
