package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/rollback"
)

// parseSelection reads the selection flags --service, --services-file and
// --label into a rollback.Selection, checked before any call; only --label
// needs the API, later (Selection.ResolveFrom).
func parseSelection(c *cli.Context, g globalOpts) (*rollback.Selection, error) {
	s := &rollback.Selection{Project: g.project, Region: g.region}
	for _, ref := range g.refs() {
		if err := s.Add(ref); err != nil {
			return s, usageError{fmt.Errorf("--service: %w", err)}
		}
	}
	if path := c.String("services-file"); path != "" {
		if err := s.AddServicesFile(path); err != nil {
			return s, usageError{err}
		}
	}
	for _, kv := range c.StringSlice("label") {
		if err := s.AddLabel(kv); err != nil {
			return s, usageError{err}
		}
	}
	if err := s.Check(); err != nil {
		return s, usageError{err}
	}
	return s, nil
}
