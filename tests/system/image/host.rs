//! Logs of what the tests run, for failure messages.

use std::fs;
use std::path::Path;

/// The end of a log, for a failure message.
pub(super) fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let cut = text.len().saturating_sub(4000);
    let cut = (cut..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[cut..].to_string()
}
