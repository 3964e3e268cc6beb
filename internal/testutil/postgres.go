package testutil

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// PostgresAdminURL is the server the tests create their databases on:
// TAVERN_TEST_PG, or the local server of the dev machine and of CI.
func PostgresAdminURL() string {
	if u := os.Getenv("TAVERN_TEST_PG"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// NewPostgres creates a fresh, empty database for one test and drops it
// when the test ends; it returns its postgres:// DSN. Without a reachable
// server the test skips, except under CI, where it fails.
func NewPostgres(t testing.TB) string {
	t.Helper()
	admin := PostgresAdminURL()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if InCI() {
			t.Fatalf("postgres at %s unreachable under CI: %v", admin, err)
		}
		t.Skipf("postgres unreachable (%v); set TAVERN_TEST_PG", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "tavern_test_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		db.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("postgres url: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
