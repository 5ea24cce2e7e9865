//! The journal's tables, and the migration of a journal an earlier version made.

use rusqlite::Connection;

pub(super) const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA wal_autocheckpoint = 4000;
    CREATE TABLE IF NOT EXISTS workers (
        id TEXT PRIMARY KEY,
        colony_id TEXT NOT NULL,
        plugin TEXT NOT NULL,
        plugin_source TEXT,
        task TEXT NOT NULL,
        input TEXT NOT NULL,
        mode TEXT NOT NULL,
        state TEXT NOT NULL,
        storage TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT,
        interrupted_at TEXT,
        result TEXT,
        owner TEXT,
        batch_id TEXT,
        batch_index INTEGER,
        batch_size INTEGER,
        token_budget INTEGER,
        tool_call_budget INTEGER,
        plugin_sha256 TEXT,
        forked_from TEXT,
        forked_at INTEGER,
        replay_of TEXT
    );
    CREATE TABLE IF NOT EXISTS batches (
        id TEXT PRIMARY KEY,
        colony_id TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS reports (
        seq INTEGER PRIMARY KEY,
        worker_id TEXT NOT NULL,
        at TEXT NOT NULL,
        report TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY,
        worker_id TEXT NOT NULL,
        event TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS events_by_worker ON events (worker_id, seq);
    CREATE INDEX IF NOT EXISTS reports_by_worker ON reports (worker_id, seq);
    CREATE TABLE IF NOT EXISTS parts (
        worker_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        part TEXT NOT NULL,
        PRIMARY KEY (worker_id, seq)
    );
    CREATE TABLE IF NOT EXISTS heartbeat (
        owner TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS controls (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        worker_id TEXT,
        message TEXT
    );
    CREATE TABLE IF NOT EXISTS control_acks (
        control INTEGER NOT NULL,
        owner TEXT NOT NULL,
        ok INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (control, owner)
    );
    CREATE TABLE IF NOT EXISTS steps (
        worker_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        kind TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        request TEXT,
        answer TEXT NOT NULL,
        PRIMARY KEY (worker_id, idx)
    );
    CREATE TABLE IF NOT EXISTS report_cursors (
        colony_id TEXT PRIMARY KEY,
        sequence INTEGER NOT NULL
    );
";

/// Brings a journal made by an earlier version up to [`SCHEMA`]: columns added since.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('workers')")?;
    let columns = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (column, kind) in [
        ("batch_id", "TEXT"),
        ("batch_index", "INTEGER"),
        ("batch_size", "INTEGER"),
        ("token_budget", "INTEGER"),
        ("tool_call_budget", "INTEGER"),
        ("plugin_sha256", "TEXT"),
        ("forked_from", "TEXT"),
        ("forked_at", "INTEGER"),
        ("replay_of", "TEXT"),
    ] {
        if !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE workers ADD COLUMN {column} {kind};"))?;
        }
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS workers_by_batch ON workers (batch_id, batch_index)",
    )
}
