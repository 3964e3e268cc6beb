package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded migrations of a dialect in version order.
// Files are named NNNN_what.sql; the number is the version.
func migrations(dialect string) ([]migration, error) {
	dir := "migrations/" + dialect
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration file %s: want NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(migrationFS, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies every embedded migration newer than the database's,
// each in its own transaction with its row in schema_migrations.
func (s *Store) migrate(ctx context.Context) error {
	db := s.db.WithContext(ctx)
	if err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)`).Error; err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	if s.dialect == "postgres" {
		// Two nodes starting on one database must not both migrate.
		if err := db.Exec(`SELECT pg_advisory_lock(7411)`).Error; err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
		defer db.Exec(`SELECT pg_advisory_unlock(7411)`)
	}
	ms, err := migrations(s.dialect)
	if err != nil {
		return err
	}
	for _, m := range ms {
		err := db.Transaction(func(tx *gorm.DB) error {
			var n int64
			if err := tx.Raw(`SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if err := tx.Exec(m.sql).Error; err != nil {
				return err
			}
			return tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.version, m.name, now()).Error
		})
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// SchemaVersion returns the newest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.WithContext(ctx).Raw(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v).Error
	return v, err
}
