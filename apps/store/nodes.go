package store

import (
	"context"
	"fmt"
	"time"
)

// NodeRow is one node of the discovery table.
type NodeRow struct {
	Name      string
	DistAddr  string // host:port of its Erlang distribution
	PublicURL string // where clients reach it
	SeenAt    time.Time
}

// Heartbeat records that a node is alive now (discovery).
func (s *Store) Heartbeat(ctx context.Context, n NodeRow) error {
	t := now()
	err := s.db.WithContext(ctx).Exec(
		`INSERT INTO nodes (name, dist_addr, public_url, started_at, seen_at) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET dist_addr = excluded.dist_addr, public_url = excluded.public_url, seen_at = excluded.seen_at`,
		n.Name, n.DistAddr, n.PublicURL, t, t).Error
	if err != nil {
		return fmt.Errorf("store: heartbeat: %w", err)
	}
	return nil
}

// LiveNodes returns the nodes seen within maxAge, and deletes the rows of
// nodes not seen for expireAfter.
func (s *Store) LiveNodes(ctx context.Context, maxAge, expireAfter time.Duration) ([]NodeRow, error) {
	t := now()
	db := s.db.WithContext(ctx)
	if err := db.Exec(`DELETE FROM nodes WHERE seen_at < ?`, t.Add(-expireAfter)).Error; err != nil {
		return nil, fmt.Errorf("store: expire nodes: %w", err)
	}
	rows, err := db.Raw(`SELECT name, dist_addr, public_url, seen_at FROM nodes WHERE seen_at >= ? ORDER BY name`, t.Add(-maxAge)).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: live nodes: %w", err)
	}
	defer rows.Close()
	var out []NodeRow
	for rows.Next() {
		var n NodeRow
		if err := rows.Scan(&n.Name, &n.DistAddr, &n.PublicURL, &n.SeenAt); err != nil {
			return nil, fmt.Errorf("store: live nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// RemoveNode deletes a node's row (a clean stop).
func (s *Store) RemoveNode(ctx context.Context, name string) error {
	return s.db.WithContext(ctx).Exec(`DELETE FROM nodes WHERE name = ?`, name).Error
}
