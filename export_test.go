package clinicalimages

// RoutePatterns lists the patterns of every endpoint Handler serves, so the
// tests can check each has a case.
func RoutePatterns(s *Service) []string {
	a := &api{s: s}
	var out []string
	for _, rt := range a.routes() {
		out = append(out, rt.pattern)
	}
	return out
}
