package httpapi

import (
	"net/http"
	"slices"

	"github.com/koshin-ota/koshin"
)

const apiManagement = "management"

// mgmtFunc handles an authorised management request; p is nil on public
// routes.
type mgmtFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

// route is one management endpoint and who may call it.
type route struct {
	Method, Path string
	// Roles may call the route; ignored when Public.
	Roles []koshin.Role
	// Public routes need no credentials.
	Public bool
	// Session routes refuse API tokens: credentials and second factors are
	// managed by the person, never by a script holding a token.
	Session bool
	handler func(*Server) mgmtFunc
}

// Role sets of the table.
var (
	everyone  = []koshin.Role{koshin.RoleAdmin, koshin.RoleReleaseManager, koshin.RoleOperator, koshin.RoleViewer, koshin.RoleAuditor}
	fleetOps  = []koshin.Role{koshin.RoleAdmin, koshin.RoleOperator}
	releasers = []koshin.Role{koshin.RoleAdmin, koshin.RoleReleaseManager}
	auditors  = []koshin.Role{koshin.RoleAdmin, koshin.RoleAuditor}
	admins    = []koshin.Role{koshin.RoleAdmin}
)

// routes is the management API and its access policy, one line per
// endpoint. docs/openapi.yaml documents the same table (x-koshin-roles),
// and the role-matrix test holds the two to each other.
var routes = []route{
	{Method: "GET", Path: "/healthz", Public: true, handler: func(s *Server) mgmtFunc { return s.healthzM }},
	{Method: "GET", Path: "/readyz", Public: true, handler: func(s *Server) mgmtFunc { return s.readyz }},
	{Method: "GET", Path: "/metrics", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.metrics }},
	{Method: "GET", Path: "/.well-known/security.txt", Public: true, handler: func(s *Server) mgmtFunc { return s.securityTxt }},

	{Method: "POST", Path: "/api/v1/sessions", Public: true, handler: func(s *Server) mgmtFunc { return s.login }},
	{Method: "DELETE", Path: "/api/v1/sessions/current", Roles: everyone, Session: true, handler: func(s *Server) mgmtFunc { return s.logout }},
	{Method: "GET", Path: "/api/v1/me", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.me }},
	{Method: "PUT", Path: "/api/v1/me/password", Roles: everyone, Session: true, handler: func(s *Server) mgmtFunc { return s.changePassword }},
	{Method: "POST", Path: "/api/v1/me/totp", Roles: everyone, Session: true, handler: func(s *Server) mgmtFunc { return s.beginTOTP }},
	{Method: "POST", Path: "/api/v1/me/totp/confirm", Roles: everyone, Session: true, handler: func(s *Server) mgmtFunc { return s.confirmTOTP }},
	{Method: "DELETE", Path: "/api/v1/me/totp", Roles: everyone, Session: true, handler: func(s *Server) mgmtFunc { return s.removeTOTP }},

	{Method: "GET", Path: "/api/v1/tokens", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.listOwnTokens }},
	{Method: "POST", Path: "/api/v1/tokens", Roles: everyone, Session: true, handler: func(s *Server) mgmtFunc { return s.createToken }},
	{Method: "DELETE", Path: "/api/v1/tokens/{id}", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.deleteOwnToken }},

	{Method: "GET", Path: "/api/v1/operators", Roles: auditors, handler: func(s *Server) mgmtFunc { return s.listOperators }},
	{Method: "POST", Path: "/api/v1/operators", Roles: admins, Session: true, handler: func(s *Server) mgmtFunc { return s.createOperator }},
	{Method: "GET", Path: "/api/v1/operators/{name}", Roles: auditors, handler: func(s *Server) mgmtFunc { return s.getOperator }},
	{Method: "PATCH", Path: "/api/v1/operators/{name}", Roles: admins, Session: true, handler: func(s *Server) mgmtFunc { return s.updateOperator }},
	{Method: "DELETE", Path: "/api/v1/operators/{name}", Roles: admins, Session: true, handler: func(s *Server) mgmtFunc { return s.deleteOperator }},
	{Method: "GET", Path: "/api/v1/operators/{name}/tokens", Roles: admins, handler: func(s *Server) mgmtFunc { return s.listOperatorTokens }},
	{Method: "DELETE", Path: "/api/v1/operators/{name}/tokens/{id}", Roles: admins, handler: func(s *Server) mgmtFunc { return s.deleteOperatorToken }},

	{Method: "GET", Path: "/api/v1/devices", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.listDevices }},
	{Method: "GET", Path: "/api/v1/devices/{id}", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.getDevice }},
	{Method: "PATCH", Path: "/api/v1/devices/{id}", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.updateDevice }},
	{Method: "GET", Path: "/api/v1/devices/{id}/inventory", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.deviceInventory }},
	{Method: "GET", Path: "/api/v1/devices/{id}/history", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.deviceHistory }},
	{Method: "GET", Path: "/api/v1/devices/{id}/assignments", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.deviceAssignments }},
	{Method: "POST", Path: "/api/v1/devices/{id}/decommission", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.decommission }},

	{Method: "GET", Path: "/api/v1/preauthorizations", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.listPreauth }},
	{Method: "POST", Path: "/api/v1/preauthorizations", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.uploadPreauth }},
	{Method: "DELETE", Path: "/api/v1/preauthorizations/{serial}", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.deletePreauth }},
	{Method: "GET", Path: "/api/v1/enrollment-tokens", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.listEnrollTokens }},
	{Method: "POST", Path: "/api/v1/enrollment-tokens", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.createEnrollToken }},
	{Method: "DELETE", Path: "/api/v1/enrollment-tokens/{id}", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.deleteEnrollToken }},

	{Method: "GET", Path: "/api/v1/releases", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.listReleases }},
	{Method: "POST", Path: "/api/v1/releases/import", Roles: releasers, handler: func(s *Server) mgmtFunc { return s.importReleases }},
	{Method: "GET", Path: "/api/v1/releases/{name}", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.getRelease }},
	{Method: "POST", Path: "/api/v1/releases/{name}/revoke", Roles: releasers, handler: func(s *Server) mgmtFunc { return s.revokeRelease }},
	{Method: "GET", Path: "/api/v1/releases/{name}/advisory", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.getReleaseAdvisory }},
	{Method: "GET", Path: "/api/v1/releases/{name}/sbom", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.getReleaseSBOM }},

	{Method: "GET", Path: "/api/v1/rollouts", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.listRollouts }},
	{Method: "POST", Path: "/api/v1/rollouts", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.createRollout }},
	{Method: "GET", Path: "/api/v1/rollouts/{id}", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.getRollout }},
	{Method: "PATCH", Path: "/api/v1/rollouts/{id}", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.updateRollout }},
	{Method: "GET", Path: "/api/v1/rollouts/{id}/assignments", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.rolloutAssignments }},
	{Method: "POST", Path: "/api/v1/rollouts/{id}/start", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.startRollout }},
	{Method: "POST", Path: "/api/v1/rollouts/{id}/pause", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.pauseRollout }},
	{Method: "POST", Path: "/api/v1/rollouts/{id}/resume", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.resumeRollout }},
	{Method: "POST", Path: "/api/v1/rollouts/{id}/abort", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.abortRollout }},
	{Method: "POST", Path: "/api/v1/rollouts/{id}/advance", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.advanceRollout }},
	{Method: "POST", Path: "/api/v1/rollouts/{id}/approvals", Roles: fleetOps, handler: func(s *Server) mgmtFunc { return s.approveRollout }},

	{Method: "GET", Path: "/api/v1/events", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.listEvents }},
	{Method: "GET", Path: "/api/v1/audit", Roles: auditors, handler: func(s *Server) mgmtFunc { return s.listAudit }},
	{Method: "GET", Path: "/api/v1/audit/verify", Roles: auditors, handler: func(s *Server) mgmtFunc { return s.verifyAudit }},
	{Method: "GET", Path: "/api/v1/anomalies", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.listAnomalies }},
	{Method: "GET", Path: "/api/v1/compliance/fleet", Roles: everyone, handler: func(s *Server) mgmtFunc { return s.fleetFacts }},
}

// RouteInfo describes one management endpoint's access policy.
type RouteInfo struct {
	Method, Path string
	Roles        []koshin.Role // nil when Public
	Public       bool
	Session      bool
}

// Routes returns the management API's access policy, for documentation
// and tests.
func Routes() []RouteInfo {
	out := make([]RouteInfo, len(routes))
	for i, rt := range routes {
		out[i] = RouteInfo{Method: rt.Method, Path: rt.Path, Public: rt.Public, Session: rt.Session}
		if !rt.Public {
			out[i].Roles = slices.Clone(rt.Roles)
		}
	}
	return out
}

// ManagementHandler serves the management API. Serve it over TLS
// (pki.Authority.ManagementTLSConfig): passwords and tokens cross it.
func (s *Server) ManagementHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.Method+" "+rt.Path, s.guard(rt))
	}
	h := s.admit(apiManagement, s.mgmtAdmission, s.routeOr404(mux))
	return s.Metrics.observe(apiManagement, s.limitSource(apiManagement, h))
}
