// Package store owns Tavern's durable state: boards, their op logs and the
// node table, in PostgreSQL or an embedded SQLite file, through gorm. It
// applies embedded, versioned migrations at start and runs the group-commit
// writer that makes ops durable before anyone acknowledges them. No gorm
// type leaves this package.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

// Store is an open database with its group-commit writer running.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect string // "postgres" or "sqlite"
	writer  *writer
	log     *slog.Logger
}

// Activation is what a board learns when it takes ownership: the epoch it
// must commit under, and where to load its state from.
type Activation struct {
	Epoch       int64
	Seq         int64  // last committed op
	Snapshot    []byte // nil when the board has none yet
	SnapshotSeq int64
}

// Op is one stored op of a board's log.
type Op struct {
	Seq    int64
	User   string
	OpID   string
	Op     []byte // the op as the client sent it (compact JSON)
	Result []byte // server-made result (dice), or nil
}

// Open connects to the database named by cfg.DSN, applies migrations and
// starts the group-commit writer.
func Open(ctx context.Context, cfg sysconfig.Store, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	gcfg := &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true, PrepareStmt: false}
	var (
		db      *gorm.DB
		err     error
		dialect string
	)
	switch {
	case strings.HasPrefix(cfg.DSN, "sqlite:"):
		dialect = "sqlite"
		path := strings.TrimPrefix(cfg.DSN, "sqlite:")
		if path != ":memory:" && !strings.HasPrefix(path, "file:") {
			if dir := filepath.Dir(path); dir != "" {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return nil, fmt.Errorf("store: create %s: %w", dir, err)
				}
			}
		}
		// WAL and synchronous=FULL: a commit is on disk before it is
		// acknowledged; busy_timeout lets the single writer and readers share.
		dsn := path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
		db, err = gorm.Open(sqlite.Open(dsn), gcfg)
	case strings.HasPrefix(cfg.DSN, "postgres://"), strings.HasPrefix(cfg.DSN, "postgresql://"):
		dialect = "postgres"
		db, err = gorm.Open(postgres.Open(withIdleTxTimeout(cfg.DSN)), gcfg)
	default:
		return nil, ErrBadDSN
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s database: %w", dialect, redactErr(err, cfg.DSN))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	pool := cfg.PoolSize
	if pool <= 0 {
		pool = 8
	}
	if dialect == "sqlite" {
		// One writer at a time is all SQLite allows; readers use the rest.
		pool = max(pool, 2)
	}
	sqlDB.SetMaxOpenConns(pool)
	sqlDB.SetMaxIdleConns(pool)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)

	s := &Store{db: db, sqlDB: sqlDB, dialect: dialect, log: log.With("app", "store")}
	if err := s.migrate(ctx); err != nil {
		sqlDB.Close()
		return nil, err
	}
	// Two transactions may overlap on PostgreSQL, when the load is heavy
	// (see writer); SQLite has a single writer anyway.
	lanes := 1
	if dialect == "postgres" && pool >= 4 {
		lanes = 2
	}
	s.writer = newWriter(s, cfg, lanes)
	return s, nil
}

// idleTxTimeout ends, on the server, a transaction whose client stopped
// in the middle of it (a node frozen by SIGSTOP, a machine that hangs): it
// would hold its boards' row locks, and no other node could take those
// boards over, for as long as the client stays frozen. Tavern's own
// transactions never wait on their client that long.
const idleTxTimeout = "3000"

// withIdleTxTimeout adds idle_in_transaction_session_timeout to a
// postgres:// DSN (pgx passes unknown parameters to the server as run-time
// settings), unless the DSN sets it already.
func withIdleTxTimeout(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn // pgx reports the malformed DSN
	}
	q := u.Query()
	if q.Has("idle_in_transaction_session_timeout") {
		return dsn
	}
	q.Set("idle_in_transaction_session_timeout", idleTxTimeout)
	u.RawQuery = q.Encode()
	return u.String()
}

// Dialect names the database kind: "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.sqlDB.PingContext(ctx) }

// Close flushes every queued commit, stops the writer and closes the pool.
func (s *Store) Close() error {
	s.writer.close()
	return s.sqlDB.Close()
}

// Activate takes ownership of a board: it creates the board if it does not
// exist and bumps its epoch, so any older activation is fenced out.
func (s *Store) Activate(ctx context.Context, boardID string) (Activation, error) {
	var a Activation
	row := s.db.WithContext(ctx).Raw(
		`INSERT INTO boards (id, seq, epoch, snapshot_seq, created_at, updated_at) VALUES (?, 0, 1, 0, ?, ?)
		 ON CONFLICT (id) DO UPDATE SET epoch = boards.epoch + 1, updated_at = excluded.updated_at
		 RETURNING epoch, seq, snapshot, snapshot_seq`, boardID, now(), now()).Row()
	if err := row.Scan(&a.Epoch, &a.Seq, &a.Snapshot, &a.SnapshotSeq); err != nil {
		return Activation{}, fmt.Errorf("store: activate board %s: %w", boardID, err)
	}
	return a, nil
}

// LoadOps returns the ops of a board with after < seq <= upTo, in seq order.
func (s *Store) LoadOps(ctx context.Context, boardID string, after, upTo int64) ([]Op, error) {
	rows, err := s.db.WithContext(ctx).Raw(
		`SELECT seq, "user", op_id, op, result FROM board_ops WHERE board_id = ? AND seq > ? AND seq <= ? ORDER BY seq`,
		boardID, after, upTo).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: load ops of %s: %w", boardID, err)
	}
	defer rows.Close()
	ops := make([]Op, 0, max(0, min(upTo-after, 4096)))
	for rows.Next() {
		var o Op
		if err := rows.Scan(&o.Seq, &o.User, &o.OpID, &o.Op, &o.Result); err != nil {
			return nil, fmt.Errorf("store: load ops of %s: %w", boardID, err)
		}
		ops = append(ops, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load ops of %s: %w", boardID, err)
	}
	return ops, nil
}

// FindOp looks up an op by the user's op id, for dedup beyond what a board
// keeps in memory. found is false when the board never accepted it.
func (s *Store) FindOp(ctx context.Context, boardID, user, opID string) (seq int64, found bool, err error) {
	rows, err := s.db.WithContext(ctx).Raw(
		`SELECT seq FROM board_ops WHERE board_id = ? AND "user" = ? AND op_id = ?`, boardID, user, opID).Rows()
	if err != nil {
		return 0, false, fmt.Errorf("store: find op: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&seq); err != nil {
			return 0, false, fmt.Errorf("store: find op: %w", err)
		}
		return seq, true, nil
	}
	return 0, false, rows.Err()
}

// Epoch reads a board's current epoch: an activation whose epoch is
// lower has been superseded (fenced) and must stop serving.
func (s *Store) Epoch(ctx context.Context, boardID string) (int64, error) {
	var epoch int64
	row := s.db.WithContext(ctx).Raw(`SELECT epoch FROM boards WHERE id = ?`, boardID).Row()
	if err := row.Scan(&epoch); err != nil {
		return 0, fmt.Errorf("store: epoch of %s: %w", boardID, err)
	}
	return epoch, nil
}

// BoardSeq reads a board's committed seq and epoch (tests and the console).
func (s *Store) BoardSeq(ctx context.Context, boardID string) (seq, epoch int64, err error) {
	row := s.db.WithContext(ctx).Raw(`SELECT seq, epoch FROM boards WHERE id = ?`, boardID).Row()
	if err := row.Scan(&seq, &epoch); err != nil {
		return 0, 0, fmt.Errorf("store: board %s: %w", boardID, err)
	}
	return seq, epoch, nil
}

func now() time.Time { return time.Now().UTC() }

// redactErr keeps a DSN's password out of error text.
func redactErr(err error, dsn string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.Index(dsn[i+3:], "@"); at >= 0 {
			cred := dsn[i+3 : i+3+at]
			if c := strings.Index(cred, ":"); c >= 0 && len(cred) > c+1 {
				msg = strings.ReplaceAll(msg, cred[c+1:], "<redacted>")
			}
		}
	}
	return fmt.Errorf("%s", msg)
}
