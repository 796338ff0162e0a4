package main

import (
	"context"
	"fmt"

	"github.com/koshin-ota/koshin/trust/verify"
)

// refresh runs the TUF client workflow for the top-level roles.
func (m *Main) refresh(ctx context.Context) (*verify.ImageClient, error) {
	c, err := m.client()
	if err != nil {
		return nil, err
	}
	if err := c.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	fmt.Fprintf(m.Stdout, "refreshed %s\n", m.metadataDir)
	return c, nil
}
