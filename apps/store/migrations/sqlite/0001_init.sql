-- Boards: one row per board; epoch fences ownership, seq is the last committed op.
CREATE TABLE boards (
    id           TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL DEFAULT 0,
    epoch        INTEGER NOT NULL DEFAULT 0,
    snapshot     BLOB,
    snapshot_seq INTEGER NOT NULL DEFAULT 0,
    created_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- The op log: every acknowledged op, once, at its seq.
CREATE TABLE board_ops (
    board_id   TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    "user"     TEXT    NOT NULL,
    op_id      TEXT    NOT NULL,
    op         BLOB    NOT NULL,
    result     BLOB,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (board_id, seq),
    UNIQUE (board_id, "user", op_id)
) WITHOUT ROWID;

-- Discovery: each node heartbeats its row; peers read the fresh ones.
CREATE TABLE nodes (
    name       TEXT PRIMARY KEY,
    dist_addr  TEXT NOT NULL DEFAULT '',
    public_url TEXT NOT NULL DEFAULT '',
    started_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    seen_at    DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
