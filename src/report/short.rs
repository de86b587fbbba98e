//! Short, safe spellings of the long identifiers a snapshot holds, shared by
//! [`super::changes`] and [`super::diff`] so both say the same thing the same
//! way.
//!
//! Fingerprints are keyed HMACs, not values, but a report is read by people
//! and pasted into tickets: eight hex digits are enough to tell two values
//! apart and too few to be worth collecting, so no renderer prints more.

use crate::snapshot::model::Timestamp;
use time::format_description::well_known::Rfc3339;

/// How many characters of a version id, fingerprint or task id are shown.
pub(crate) const SHORT: usize = 8;

/// The first eight characters of an id (a secret version id, a task id).
pub(crate) fn id(s: &str) -> &str {
    match s.char_indices().nth(SHORT) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The first eight hex digits of a fingerprint, without its `hmac-sha256:` scheme.
pub(crate) fn fingerprint(fp: &str) -> &str {
    let hex = fp.rsplit_once(':').map_or(fp, |(_, h)| h);
    id(hex)
}

/// `arn:…:task-definition/prod-search-api:3` → `prod-search-api:3`.
pub(crate) fn task_definition(arn: &str) -> &str {
    arn.rsplit_once('/').map_or(arn, |(_, td)| td)
}

/// `arn:…:task/cluster/0123456789abcdef…` → `01234567`.
pub(crate) fn task(arn: &str) -> &str {
    id(arn.rsplit_once('/').map_or(arn, |(_, t)| t))
}

/// RFC 3339, the way snapshots and reports spell every instant.
pub(crate) fn time(t: &Timestamp) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A JSON value in at most `max` characters, for metadata shown in a line.
pub(crate) fn json(v: &serde_json::Value, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// `1 thing` / `2 things`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_without_panicking_on_short_or_odd_input() {
        assert_eq!(id("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), "0f1e2d3c");
        assert_eq!(id("v1"), "v1");
        assert_eq!(id("ééééééééé"), "éééééééé");
        assert_eq!(
            fingerprint("hmac-sha256:00112233445566778899aabbccddeeff"),
            "00112233"
        );
        assert_eq!(fingerprint("abc"), "abc");
        assert_eq!(
            task_definition("arn:aws:ecs:eu-west-1:000000000000:task-definition/prod-search-api:3"),
            "prod-search-api:3"
        );
        assert_eq!(
            task("arn:aws:ecs:eu-west-1:000000000000:task/c/0123456789abcdef"),
            "01234567"
        );
        assert_eq!(json(&serde_json::json!("abcdef"), 5), "\"abc…");
        assert_eq!(count(1, "task", "tasks"), "1 task");
        assert_eq!(count(3, "task", "tasks"), "3 tasks");
    }
}
