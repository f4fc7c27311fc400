//! One error type for the whole engine, plus the per-input problem record that results carry.
//!
//! A run distinguishes two kinds of trouble:
//! * an [`Error`] stops the call (bad options, cancellation, an input problem under `on_error="fail"`);
//! * a [`Problem`] is one input's trouble, recorded in the result's `errors` while the run goes on.
//!
//! The Python binding maps each [`ErrorKind`] to one exception class (see `python/errors.rs`).

use serde::Serialize;
use std::fmt;
use std::path::Path;

/// The failure kinds, each of which becomes its own Python exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// An input could not be parsed (malformed row, invalid UTF-8, corrupt image, ...).
    Input,
    /// Column types that cannot be reconciled, or a schema override that does not fit.
    Schema,
    /// The options given to the engine are invalid.
    Options,
    /// The run was cancelled through its progress token or a KeyboardInterrupt.
    Cancelled,
    /// The file does not exist.
    NotFound,
    /// The file exists but may not be read or written.
    PermissionDenied,
    /// Any other I/O failure.
    Io,
    /// A bug: a panic caught at the boundary, or an invariant that did not hold.
    Internal,
}

/// An error that stops the whole call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// The input the error is about, when there is one.
    pub path: Option<String>,
    /// 1-based line number inside `path`, when known.
    pub line: Option<u64>,
    /// Byte offset inside the (decompressed) input, when known.
    pub offset: Option<u64>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            path: None,
            line: None,
            offset: None,
        }
    }
    pub fn options(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Options, message)
    }
    pub fn schema(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Schema, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "the run was cancelled")
    }
    /// An input error at a place in a file.
    pub fn input(
        path: impl AsRef<Path>,
        line: Option<u64>,
        offset: Option<u64>,
        message: impl Into<String>,
    ) -> Self {
        Error {
            kind: ErrorKind::Input,
            message: message.into(),
            path: Some(path.as_ref().display().to_string()),
            line,
            offset,
        }
    }
    /// An I/O error on `path`, keeping the kind that Python maps to FileNotFoundError / PermissionError.
    pub fn io(path: impl AsRef<Path>, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::Io,
        };
        Error {
            kind,
            message: err.to_string(),
            path: Some(path.as_ref().display().to_string()),
            line: None,
            offset: None,
        }
    }
    pub fn with_path(mut self, path: impl AsRef<Path>) -> Self {
        if self.path.is_none() {
            self.path = Some(path.as_ref().display().to_string());
        }
        self
    }
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }
    /// The per-input record of this error, for a result's `errors` list.
    pub fn to_problem(&self) -> Problem {
        Problem {
            path: self.path.clone().unwrap_or_default(),
            kind: self.kind,
            message: self.message.clone(),
            line: self.line,
            offset: self.offset,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{path}")?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            if let Some(offset) = self.offset {
                write!(f, " (byte {offset})")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Error {}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        match e {
            arrow::error::ArrowError::IoError(msg, io) => Error::new(io_kind(&io), msg),
            other => Error::internal(other.to_string()),
        }
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::internal(format!("parquet: {e}"))
    }
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Io,
    }
}

/// One input's problem, reported in a result's `errors` while the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub kind: ErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// What to do with a bad input or a malformed record: the `on_error` option shared by every pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Record the problem in the result and go on with the other inputs (the default).
    #[default]
    Skip,
    /// Stop the run at the first problem with an error.
    Fail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_and_offset() {
        let e = Error::input("/data/a.csv", Some(7), Some(120), "unterminated quote");
        assert_eq!(
            e.to_string(),
            "/data/a.csv:7 (byte 120): unterminated quote"
        );
    }

    #[test]
    fn io_not_found_keeps_its_kind() {
        let e = Error::io("/nope", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.to_problem().path, "/nope");
    }
}
