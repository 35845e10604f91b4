//! Brings a board file to this build's schema version, or refuses it.
//!
//! A file records in `PRAGMA user_version` how many steps of [`MIGRATIONS`] it has had
//! (0: a new, empty file). Opening one:
//! - at this build's version: nothing to do;
//! - older: a copy of the file as it was is kept beside it first
//!   (`<file>.schema-v<N>.bak`, made with `VACUUM INTO`, so it is consistent and needs no
//!   WAL), for going back to the older release; then every missing step runs in one
//!   IMMEDIATE transaction with the new version, so a failed step leaves the file as it was;
//! - newer (written by a later release): [`Error::UnsupportedFormat`], naming both versions;
//!   nothing is written.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use super::db::sql_error;
use super::schema::{Step, MIGRATIONS, SCHEMA_VERSION};
use crate::error::Error;

/// Brings the file open in `conn` (at `path`) to [`SCHEMA_VERSION`]; see the module doc.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), Error> {
    let found = user_version(conn)?;
    check_known(found, path)?;
    if found > 0 && found < SCHEMA_VERSION {
        backup(conn, path, found)?;
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_error)?;
    // Read again under the write lock: the version the steps start from.
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(sql_error)?;
    check_known(found, path)?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let from = usize::try_from(found).unwrap_or(0);
    for (index, step) in MIGRATIONS.iter().enumerate().skip(from) {
        let applied = match step {
            Step::Sql(sql) => tx.execute_batch(sql).map_err(sql_error),
            Step::Code(run) => run(&tx),
        };
        applied.map_err(|error| Error::Backend {
            message: format!(
                "board file {}: migrating the schema from version {found} failed at version {}; \
                 the file is unchanged",
                path.display(),
                index + 1
            ),
            source: Some(Box::new(error)),
        })?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql_error)?;
    tx.commit().map_err(sql_error)?;
    if found > 0 {
        tracing::info!(file = %path.display(), from = found, to = SCHEMA_VERSION, "board file schema migrated");
    }
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64, Error> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(sql_error)
}

/// Refuses a version this build cannot read (newer, or nonsense).
fn check_known(found: i64, path: &Path) -> Result<(), Error> {
    if (0..=SCHEMA_VERSION).contains(&found) {
        return Ok(());
    }
    Err(Error::UnsupportedFormat {
        board: format!("embedded board file {}", path.display()),
        found: found.to_string(),
        supported: SCHEMA_VERSION.to_string(),
    })
}

/// Where the copy of a file at schema version `version` is kept.
pub(crate) fn backup_path(path: &Path, version: i64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".schema-v{version}.bak"));
    PathBuf::from(name)
}

/// Copies the file as it is now beside it, unless a copy of that version is already there
/// (a previous migration attempt that failed after it made one).
fn backup(conn: &Connection, path: &Path, version: i64) -> Result<(), Error> {
    let target = backup_path(path, version);
    if target.exists() {
        return Ok(());
    }
    let text = target.to_str().ok_or_else(|| Error::Backend {
        message: format!("board file backup path {} is not UTF-8", target.display()),
        source: None,
    })?;
    conn.execute("VACUUM INTO ?1", [text]).map_err(|error| Error::Backend {
        message: format!("cannot keep a copy of the board file before migrating it: {}", target.display()),
        source: Some(Box::new(error)),
    })?;
    tracing::info!(copy = %target.display(), version, "kept a copy of the board file before migrating its schema");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::BoardConfig;

    /// A file at `version`: the first `version` steps, as that release made it.
    fn file_at(path: &Path, version: usize) {
        let conn = Connection::open(path).expect("open");
        for step in &MIGRATIONS[..version] {
            let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate).expect("tx");
            match step {
                Step::Sql(sql) => tx.execute_batch(sql).expect("step"),
                Step::Code(run) => run(&tx).expect("step"),
            }
            tx.commit().expect("commit");
        }
        conn.pragma_update(None, "user_version", version as i64).expect("user_version");
    }

    fn schema_of(path: &Path) -> Vec<String> {
        let conn = Connection::open(path).expect("open");
        let mut stmt =
            conn.prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name").expect("prepare");
        stmt.query_map([], |row| row.get::<_, String>(0)).expect("query").map(|r| r.expect("row")).collect()
    }

    /// A file of every older version opens, ends at this version with the schema a new
    /// file has, and leaves a copy of itself as it was.
    #[test]
    fn every_older_version_migrates_to_the_schema_of_a_new_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fresh = dir.path().join("fresh.sqlite3");
        drop(crate::embedded::EmbeddedBoard::open(&fresh, BoardConfig::new("a")).expect("new file"));
        for version in 1..MIGRATIONS.len() {
            let path = dir.path().join(format!("v{version}.sqlite3"));
            file_at(&path, version);
            drop(crate::embedded::EmbeddedBoard::open(&path, BoardConfig::new("a")).expect("migrates"));
            assert_eq!(schema_of(&path), schema_of(&fresh), "migrated from version {version}");
            let kept = backup_path(&path, version as i64);
            let conn = Connection::open(&kept).expect("the copy opens");
            assert_eq!(user_version(&conn).expect("version"), version as i64, "the copy is the old file");
        }
    }

    /// A file written by a newer release is refused, naming both versions, and left as it was.
    #[test]
    fn a_newer_file_is_refused_unchanged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("board.sqlite3");
        file_at(&path, MIGRATIONS.len());
        Connection::open(&path).expect("open").pragma_update(None, "user_version", SCHEMA_VERSION + 1).expect("bump");
        let error = crate::embedded::EmbeddedBoard::open(&path, BoardConfig::new("a")).expect_err("refused");
        let text = error.to_string();
        assert!(matches!(error, Error::UnsupportedFormat { .. }), "{error:?}");
        assert!(text.contains(&format!("format {}", SCHEMA_VERSION + 1)), "names what it found: {text}");
        assert!(text.contains(&format!("up to {SCHEMA_VERSION}")), "names what it reads: {text}");
        let conn = Connection::open(&path).expect("open");
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION + 1);
        assert!(!backup_path(&path, SCHEMA_VERSION + 1).exists());
    }
}
