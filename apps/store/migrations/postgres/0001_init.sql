-- Boards: one row per board; epoch fences ownership, seq is the last committed op.
CREATE TABLE boards (
    id           TEXT PRIMARY KEY,
    seq          BIGINT NOT NULL DEFAULT 0,
    epoch        BIGINT NOT NULL DEFAULT 0,
    snapshot     BYTEA,
    snapshot_seq BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The op log: every acknowledged op, once, at its seq.
CREATE TABLE board_ops (
    board_id   TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    "user"     TEXT   NOT NULL,
    op_id      TEXT   NOT NULL,
    op         BYTEA  NOT NULL,
    result     BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (board_id, seq),
    UNIQUE (board_id, "user", op_id)
);

-- Discovery: each node heartbeats its row; peers read the fresh ones.
CREATE TABLE nodes (
    name       TEXT PRIMARY KEY,
    dist_addr  TEXT NOT NULL DEFAULT '',
    public_url TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    seen_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
