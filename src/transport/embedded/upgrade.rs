//! Brings a queue file made by an earlier version up to the current schema.

use rusqlite::Connection;

/// The trace context columns (added 2026-12): a file made before them opens and
/// keeps its messages, which simply carry no trace context.
pub(super) fn add_trace_columns(conn: &Connection) -> rusqlite::Result<()> {
    for table in ["deliveries", "parked"] {
        let has_them = conn
            .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = 'traceparent'")?
            .exists([table])?;
        if !has_them {
            tracing::info!(table, "upgrading a queue file made by an earlier version: trace context columns");
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN traceparent TEXT; ALTER TABLE {table} ADD COLUMN tracestate TEXT;"
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_the_columns_gets_them_and_keeps_its_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE deliveries (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
             CREATE TABLE parked (id TEXT PRIMARY KEY, body BLOB NOT NULL);
             INSERT INTO deliveries (body) VALUES (x'7b7d');",
        )
        .unwrap();
        add_trace_columns(&conn).unwrap();
        add_trace_columns(&conn).unwrap(); // idempotent
        let (body, traceparent): (Vec<u8>, Option<String>) =
            conn.query_row("SELECT body, traceparent FROM deliveries", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((body.as_slice(), traceparent), (&b"{}"[..], None));
        conn.execute("INSERT INTO parked (id, body, tracestate) VALUES ('p', x'00', 'a=b')", []).unwrap();
    }
}
