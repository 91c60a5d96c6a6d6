//! Data feeders: rows from a CSV (header row first) or JSON (array) file, handed to users.
//!
//! `sequential` hands rows out in file order to one user after another and starts over at the
//! end; `random` picks any row; `unique` hands each row out once per run, so a file of test
//! accounts is never shared by two users. Rows are read when the scenario is loaded, so a
//! missing or empty file is refused before any request.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use minijinja::Value as Mj;
use rand::Rng;

use super::model::{FeederMode, FeederPer};

/// A feeder's rows and how they are handed out.
#[derive(Debug)]
pub struct Feeder {
    pub name: String,
    /// The file as the scenario names it, for messages.
    pub file: String,
    pub mode: FeederMode,
    pub per: FeederPer,
    rows: Vec<Mj>,
}

impl Feeder {
    pub fn load(
        name: &str,
        file: &str,
        path: &Path,
        mode: FeederMode,
        per: FeederPer,
    ) -> Result<Feeder, String> {
        let rows = read_rows(path)?;
        if rows.is_empty() {
            return Err(format!("feeder file {} has no rows", path.display()));
        }
        Ok(Feeder {
            name: name.to_string(),
            file: file.to_string(),
            mode,
            per,
            rows,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

fn read_rows(path: &Path) -> Result<Vec<Mj>, String> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read feeder file {}: {e}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("feeder file {} is not JSON: {e}", path.display()))?;
        let serde_json::Value::Array(rows) = value else {
            return Err(format!(
                "feeder file {} is not a JSON array of rows",
                path.display()
            ));
        };
        return Ok(rows.iter().map(Mj::from_serialize).collect());
    }
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| format!("cannot read feeder file {}: {e}", path.display()))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("feeder file {}: {e}", path.display()))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("feeder file {}: {e}", path.display()))?;
        let row: indexmap::IndexMap<&str, &str> = headers.iter().zip(record.iter()).collect();
        rows.push(Mj::from_serialize(&row));
    }
    Ok(rows)
}

/// One run's cursor over a feeder.
#[derive(Debug)]
pub struct Cursor {
    pub feeder: Arc<Feeder>,
    next: AtomicUsize,
}

impl Cursor {
    pub fn new(feeder: Arc<Feeder>) -> Cursor {
        Cursor {
            feeder,
            next: AtomicUsize::new(0),
        }
    }

    /// The next row; `None` when a unique feeder has handed out every row.
    pub fn draw(&self) -> Option<Mj> {
        let rows = &self.feeder.rows;
        match self.feeder.mode {
            FeederMode::Sequential => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                Some(rows[n % rows.len()].clone())
            }
            FeederMode::Random => Some(rows[rand::rng().random_range(0..rows.len())].clone()),
            FeederMode::Unique => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                rows.get(n).cloned()
            }
        }
    }
}
