//! Insta settings for snapshots of opsguard's real output: what changes from
//! run to run (times, run ids, ports, temporary folders, durations, random
//! ids) is replaced by a placeholder, so a snapshot changes only when what a
//! person reads changes.

/// The filters every output snapshot needs, plus `extra` (regex,
/// placeholder) for a test's own random values, e.g. an API key id; the
/// extras apply first. Snapshots are named without the test module's prefix
/// unless the caller turns it back on.
pub fn settings(extra: &[(String, &str)]) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_snapshot_path(crate::ministack::workspace_root().join("tests/snapshots"));
    for (re, to) in extra {
        s.add_filter(re, *to);
    }
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
        "[TIME]",
    );
    s.add_filter(r"\b\d{2}:\d{2}:\d{2}\b", "[HH:MM:SS]");
    s.add_filter(r"\b\d{8}T\d{6}Z-[0-9a-f]{4}\b", "[RUN_ID]");
    s.add_filter(r"(127\.0\.0\.1|localhost):\d+", "$1:[PORT]");
    s.add_filter(r"/tmp/[^\s/:]+", "/tmp/[TMP]");
    s.add_filter(r"\b\d+(\.\d+)? ?(ms|s)\b", "[DURATION]");
    // Secret version ids, shown by their first 8 hex digits.
    s.add_filter(r"\b[0-9a-f]{8}\b", "[VERSION]");
    s
}

/// `s` as a regex matching itself, for an `extra` filter of a path or an id.
pub fn literal(s: &str) -> String {
    s.chars().fold(String::new(), |mut out, c| {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}
