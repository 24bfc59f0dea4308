//! What kind of failure a SQLite error is, for the embedded store and the
//! embedded queue alike: each turns the kind into its own error's variant.

use rusqlite::ErrorCode as Code;

/// The kinds a SQLite error falls into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteFailure {
    /// Busy, locked, I/O, disk full, cannot open, out of memory, read-only: may pass.
    Unavailable,
    /// The file is damaged, or a stored value has the wrong type or range.
    Corrupt,
    /// A constraint (a unique key) refused the write.
    Conflict,
    /// A statement that does not fit the schema: our own defect.
    Defect,
}

impl SqliteFailure {
    pub fn of(e: &rusqlite::Error) -> SqliteFailure {
        match e.sqlite_error_code() {
            Some(Code::DatabaseCorrupt | Code::NotADatabase) => SqliteFailure::Corrupt,
            Some(Code::ConstraintViolation) => SqliteFailure::Conflict,
            Some(_) => SqliteFailure::Unavailable,
            None if matches!(
                e,
                rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
                    | rusqlite::Error::Utf8Error(..)
            ) =>
            {
                SqliteFailure::Corrupt
            }
            None => SqliteFailure::Defect,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_fall_into_their_kinds() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER); INSERT INTO t VALUES ('a', 'x');").unwrap();
        let duplicate = conn.execute("INSERT INTO t VALUES ('a', 1)", []).unwrap_err();
        assert_eq!(SqliteFailure::of(&duplicate), SqliteFailure::Conflict);
        let not_a_number = conn.query_row("SELECT n FROM t", [], |r| r.get::<_, i64>(0)).unwrap_err();
        assert_eq!(SqliteFailure::of(&not_a_number), SqliteFailure::Corrupt);
        let no_table = conn.execute("INSERT INTO missing VALUES (1)", []).unwrap_err();
        assert_eq!(SqliteFailure::of(&no_table), SqliteFailure::Unavailable, "SQLITE_ERROR is a code; schema drift reads as a store problem");
    }
}
