//! The archive format's own types (`ARCHIVE_FORMAT.md`): where files go, the front matter's
//! date, and the labels of the link lines. Ground floor: config, the pipeline, the publishers
//! and the server all use them, and they import no stage.

mod labels;
mod path;

pub use labels::{DEFAULT_LABEL, Labels};
pub use path::{PathTemplate, list_files, with_suffix};

use chrono::{DateTime, SecondsFormat, Utc};

/// Front matter date: UTC, exactly three fractional digits, `Z`.
pub fn format_date(date: &DateTime<Utc>) -> String {
    date.to_rfc3339_opts(SecondsFormat::Millis, true)
}
