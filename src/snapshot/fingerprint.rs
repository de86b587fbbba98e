//! Keyed fingerprints of secret values.
//!
//! A snapshot must say whether a secret's value changed without saying what
//! the value is. A plain hash would do the first, but a snapshot file lying in
//! a CI artefact would then let anyone test guesses of a weak password offline.
//! So the fingerprint is HMAC-SHA256 under a key that never leaves the machine
//! (or the CI secret store): `.opsguard/fingerprint.key` beside the config,
//! created on first use with mode 0600, or `OPSGUARD_FINGERPRINT_KEY`.
//!
//! Two snapshots are comparable only if made under the same key; each carries
//! the key's id (a hash of the key, not the key) to make that checkable.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

pub const KEY_ENV: &str = "OPSGUARD_FINGERPRINT_KEY";
const KEY_FILE: &str = crate::state::FINGERPRINT_KEY;

/// The HMAC key. Deliberately neither `Display` nor a revealing `Debug`.
pub struct FingerprintKey(SecretSlice<u8>);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FingerprintKey({})", self.id())
    }
}

impl FingerprintKey {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(SecretSlice::from(bytes.to_vec()))
    }

    /// The key from `OPSGUARD_FINGERPRINT_KEY` if set, else from
    /// `STATE_DIR/fingerprint.key`, creating that file if it does not exist.
    pub fn load_or_create(
        state_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::io::Result<Self> {
        if let Some(k) = env(KEY_ENV).filter(|k| !k.is_empty()) {
            return Ok(Self::from_bytes(k.as_bytes()));
        }
        let path = state_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 16 => return Ok(Self::from_bytes(&bytes)),
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is shorter than 16 bytes", path.display()),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        crate::state::ensure(state_dir)?;
        let key: [u8; 32] = rand::random();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&path) {
            Ok(mut f) => {
                f.write_all(&key)?;
                f.sync_all()?;
                Ok(Self::from_bytes(&key))
            }
            // Another opsguard created it between our read and our create.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(Self::from_bytes(&std::fs::read(&path)?))
            }
            Err(e) => Err(e),
        }
    }

    /// A short public id of the key: equal ids mean comparable fingerprints.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"opsguard fingerprint key id\0");
        h.update(self.0.expose_secret());
        format!("k1:{}", hex::encode(&h.finalize()[..8]))
    }

    /// `hmac-sha256:` and the first 128 bits of the MAC, in hex.
    pub fn fingerprint(&self, value: &SecretString) -> String {
        self.fingerprint_bytes(value.expose_secret().as_bytes())
    }

    pub fn fingerprint_bytes(&self, value: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(value);
        format!(
            "hmac-sha256:{}",
            hex::encode(&mac.finalize().into_bytes()[..16])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_value_same_fingerprint() {
        let k = FingerprintKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let a = k.fingerprint(&SecretString::from("correct horse"));
        assert_eq!(a, k.fingerprint(&SecretString::from("correct horse")));
        assert_ne!(a, k.fingerprint(&SecretString::from("correct horsf")));
        assert!(a.starts_with("hmac-sha256:"));
        assert_eq!(a.len(), "hmac-sha256:".len() + 32);
    }

    #[test]
    fn the_fingerprint_depends_on_the_key_and_hides_the_value() {
        let v = SecretString::from("hunter22");
        let k1 = FingerprintKey::from_bytes(b"key-one-key-one-key-one");
        let k2 = FingerprintKey::from_bytes(b"key-two-key-two-key-two");
        assert_ne!(k1.fingerprint(&v), k2.fingerprint(&v));
        assert_ne!(k1.id(), k2.id());
        // Not a plain hash of the value.
        let plain = hex::encode(Sha256::digest(b"hunter22"));
        assert!(!plain.starts_with(k1.fingerprint(&v).trim_start_matches("hmac-sha256:")));
        assert!(!format!("{k1:?}").contains("key-one"));
    }

    #[test]
    fn the_key_file_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let none = |_: &str| None;
        let k1 = FingerprintKey::load_or_create(dir.path(), &none).unwrap();
        let k2 = FingerprintKey::load_or_create(dir.path(), &none).unwrap();
        assert_eq!(k1.id(), k2.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let from_env = |n: &str| (n == KEY_ENV).then(|| "ci-provided-key".to_owned());
        let k3 = FingerprintKey::load_or_create(dir.path(), &from_env).unwrap();
        assert_ne!(k3.id(), k1.id());
        assert_eq!(k3.id(), FingerprintKey::from_bytes(b"ci-provided-key").id());
    }
}
