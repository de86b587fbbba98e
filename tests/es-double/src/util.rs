//! Small helpers: URL decoding, ids, secrets, time values and the string
//! similarity Elasticsearch uses to suggest parameter names.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

/// Decodes `%XX` escapes (and `+` when `plus_as_space`), as Elasticsearch's
/// `RestUtils.decodeComponent` does. Invalid escapes are kept verbatim.
pub(crate) fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a query string into decoded `(name, value)` pairs, in order.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `n` random bytes, URL-safe base64 without padding (the alphabet of
/// Elasticsearch's `UUIDs.base64UUID()` and API key secrets).
pub(crate) fn random_b64url(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

pub(crate) fn b64_encode(s: &str) -> String {
    STANDARD.encode(s.as_bytes())
}

pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s.trim().as_bytes()).ok()
}

/// A salted SHA-256 of a password or API key secret. The double never keeps
/// a secret in clear text, and this type has no `Debug` so it cannot be
/// printed by accident.
#[derive(Clone)]
pub(crate) struct Credential {
    salt: [u8; 16],
    hash: [u8; 32],
}

impl Credential {
    pub(crate) fn new(secret: &str) -> Credential {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let hash = Self::digest(&salt, secret);
        Credential { salt, hash }
    }

    pub(crate) fn verify(&self, secret: &str) -> bool {
        let candidate = Self::digest(&self.salt, secret);
        // constant-time comparison
        candidate
            .iter()
            .zip(self.hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    fn digest(salt: &[u8; 16], secret: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(secret.as_bytes());
        h.finalize().into()
    }
}

/// Parses an Elasticsearch time value (`1d`, `30m`, `12h`, `10s`, `500ms`,
/// `2micros`, `3nanos`) into milliseconds.
pub(crate) fn parse_time_value(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let units: [(&str, f64); 7] = [
        ("nanos", 1e-6),
        ("micros", 1e-3),
        ("ms", 1.0),
        ("s", 1000.0),
        ("m", 60_000.0),
        ("h", 3_600_000.0),
        ("d", 86_400_000.0),
    ];
    for (suffix, factor) in units {
        if let Some(num) = s.strip_suffix(suffix) {
            // "ms" must not be read as "m" + "s", and "nanos"/"micros" end in "s"
            if suffix == "s"
                && (num.ends_with('m') || num.ends_with("nano") || num.ends_with("micro"))
            {
                continue;
            }
            let n: f64 = num.trim().parse().ok()?;
            if n < 0.0 {
                return None;
            }
            return Some((n * factor) as u64);
        }
    }
    None
}

/// Lucene's `LevenshteinDistance.getDistance`: 1 - edits / max(len).
pub(crate) fn similarity(target: &str, other: &str) -> f32 {
    let t: Vec<char> = target.chars().collect();
    let o: Vec<char> = other.chars().collect();
    let n = t.len();
    let m = o.len();
    if n == 0 || m == 0 {
        return if n == m { 1.0 } else { 0.0 };
    }
    let mut p: Vec<usize> = (0..=n).collect();
    let mut d = vec![0usize; n + 1];
    for j in 1..=m {
        let tj = o[j - 1];
        d[0] = j;
        for i in 1..=n {
            let cost = usize::from(t[i - 1] != tj);
            d[i] = (d[i - 1] + 1).min(p[i] + 1).min(p[i - 1] + cost);
        }
        std::mem::swap(&mut p, &mut d);
    }
    1.0 - (p[n] as f32 / n.max(m) as f32)
}

/// Glob match where `*` matches any run of characters (Elasticsearch's
/// simple automaton patterns for privileges and index names).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == t[ti] || p[pi] == '?') {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz", false), "%zz");
    }

    #[test]
    fn time_values() {
        assert_eq!(parse_time_value("1d"), Some(86_400_000));
        assert_eq!(parse_time_value("30m"), Some(1_800_000));
        assert_eq!(parse_time_value("500ms"), Some(500));
        assert_eq!(parse_time_value("2s"), Some(2000));
        assert_eq!(parse_time_value("2000000nanos"), Some(2));
        assert_eq!(parse_time_value("abc"), None);
        assert_eq!(parse_time_value("10"), None);
    }

    #[test]
    fn similarity_like_lucene() {
        assert!((similarity("refresh", "refresh") - 1.0).abs() < f32::EPSILON);
        assert!(similarity("refrsh", "refresh") > 0.5);
        assert!(similarity("zzz", "refresh") < 0.5);
    }

    #[test]
    fn globbing() {
        assert!(glob_match(
            "cluster:admin/xpack/security/*",
            "cluster:admin/xpack/security/user/put"
        ));
        assert!(!glob_match(
            "cluster:monitor/*",
            "cluster:admin/xpack/security/user/put"
        ));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("log-*-x", "log-1-x"));
    }

    #[test]
    fn credentials_verify() {
        let c = Credential::new("s3krit-password");
        assert!(c.verify("s3krit-password"));
        assert!(!c.verify("s3krit-password2"));
    }
}
