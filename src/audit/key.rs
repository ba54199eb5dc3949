//! The audit key: 32 random bytes kept outside the database. It keys the audit chain
//! (HMAC-SHA-256 instead of plain SHA-256, so an intruder holding the database file cannot
//! recompute a chain after editing it) and signs the checkpoints written beside the database.
//!
//! It comes from `AGENT_OTP_AUDIT_KEY` (64 hex characters), or the file named by
//! `AGENT_OTP_AUDIT_KEY_FILE`, or else `audit.key` in the data directory, created with mode 0600
//! on first use. Keep a copy with your backups: without it the keyed part of the chain cannot be
//! verified. For the strongest setting, keep the file outside the data directory (readable by the
//! service only) and name it with `AGENT_OTP_AUDIT_KEY_FILE`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::hex;

/// The key's variable; `<name>_FILE` names a file holding it instead.
pub(crate) const AUDIT_KEY_ENV: &str = "AGENT_OTP_AUDIT_KEY";
/// The key file's name inside the data directory when no variable names one.
pub(crate) const KEY_FILE: &str = "audit.key";

/// What the key is used for, so a MAC made for one use never verifies as another.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// One link of the audit chain.
    Chain,
    /// A checkpoint line.
    Checkpoint,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Chain => b"agent-otp audit chain v1\n",
            Purpose::Checkpoint => b"agent-otp audit checkpoint v1\n",
        }
    }
}

/// The key. `Debug` prints `***`.
#[derive(Clone)]
pub struct AuditKey {
    bytes: [u8; 32],
    /// HMAC-SHA-256 with the key already absorbed: each MAC starts from a copy instead of
    /// hashing the padded key again (two SHA-256 blocks of every MAC).
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(***)")
    }
}

/// The key could not be read, parsed or created.
#[derive(Debug, thiserror::Error)]
#[error("audit key: {0}")]
pub struct KeyError(String);

impl AuditKey {
    /// HMAC-SHA-256 of `body` for `purpose`, hex-encoded.
    pub fn mac(&self, purpose: Purpose, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(purpose.label());
        mac.update(body);
        hex(&mac.finalize().into_bytes())
    }

    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<AuditKey, KeyError> {
        let text = text.trim();
        let bad = || KeyError("must be 64 hexadecimal characters (32 bytes)".into());
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            let pair = text.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(AuditKey::from_bytes(key))
    }

    fn from_bytes(bytes: [u8; 32]) -> AuditKey {
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        AuditKey { bytes, keyed }
    }

    /// The key for the database in `data_dir`: from the environment (`env` looks a variable up),
    /// else the key file there, created if `create` allows and it is missing.
    pub fn resolve(
        data_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
        create: bool,
    ) -> Result<AuditKey, KeyError> {
        let file_var = format!("{AUDIT_KEY_ENV}_FILE");
        let value = env(AUDIT_KEY_ENV).filter(|v| !v.is_empty());
        let file = env(&file_var).filter(|v| !v.is_empty());
        match (value, file) {
            (Some(_), Some(_)) => Err(KeyError(format!(
                "set either {AUDIT_KEY_ENV} or {file_var}, not both"
            ))),
            (Some(v), None) => {
                AuditKey::from_hex(&v).map_err(|e| KeyError(format!("{AUDIT_KEY_ENV} {}", e.0)))
            }
            (None, Some(path)) => read_key(Path::new(&path)),
            (None, None) => {
                let path = data_dir.join(KEY_FILE);
                match read_key(&path) {
                    Ok(key) => Ok(key),
                    Err(_) if create && !path.exists() => create_key(&path),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// A fresh random key (tests and first start).
    pub fn generate() -> Result<AuditKey, KeyError> {
        use rand::TryRng;
        let mut key = [0u8; 32];
        rand::rngs::SysRng.try_fill_bytes(&mut key).map_err(|_| {
            KeyError("the operating system's random number generator failed".into())
        })?;
        Ok(AuditKey::from_bytes(key))
    }

    fn to_hex(&self) -> String {
        hex(&self.bytes)
    }
}

/// Where the key of `data_dir` is kept when no variable names one.
pub(crate) fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

fn read_key(path: &Path) -> Result<AuditKey, KeyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeyError(format!("cannot read {}: {e}", path.display())))?;
    AuditKey::from_hex(&text).map_err(|e| KeyError(format!("{}: {}", path.display(), e.0)))
}

/// Writes a new key file, readable by its owner only; an existing file is never replaced.
fn create_key(path: &Path) -> Result<AuditKey, KeyError> {
    let key = AuditKey::generate()?;
    let mut file = crate::store::create_private(path)
        .map_err(|e| KeyError(format!("cannot create {}: {e}", path.display())))?;
    writeln!(file, "{}", key.to_hex())
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyError(format!("cannot write {}: {e}", path.display())))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_depend_on_key_purpose_and_body() {
        let a = AuditKey::from_hex(&"11".repeat(32)).unwrap();
        let b = AuditKey::from_hex(&"12".repeat(32)).unwrap();
        let m = a.mac(Purpose::Chain, b"x");
        assert_eq!(m.len(), 64);
        assert_ne!(m, b.mac(Purpose::Chain, b"x"));
        assert_ne!(m, a.mac(Purpose::Checkpoint, b"x"));
        assert_ne!(m, a.mac(Purpose::Chain, b"y"));
        assert_eq!(m, a.mac(Purpose::Chain, b"x"));
        assert!(format!("{a:?}").contains("***"));
    }

    #[test]
    fn the_key_comes_from_the_environment_or_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let none = |_: &str| None;
        assert!(
            AuditKey::resolve(dir.path(), none, false).is_err(),
            "no key, no create"
        );
        let made = AuditKey::resolve(dir.path(), none, true).unwrap();
        let again = AuditKey::resolve(dir.path(), none, true).unwrap();
        assert_eq!(made.to_hex(), again.to_hex(), "created once, then read");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(default_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let hexkey = "ab".repeat(32);
        let from_env = |k: &str| (k == AUDIT_KEY_ENV).then(|| hexkey.clone());
        assert_eq!(
            AuditKey::resolve(dir.path(), from_env, true)
                .unwrap()
                .to_hex(),
            hexkey
        );
        let bad = |k: &str| (k == AUDIT_KEY_ENV).then(|| "xyz".to_owned());
        assert!(AuditKey::resolve(dir.path(), bad, true).is_err());
        let file = dir.path().join("elsewhere.key");
        std::fs::write(&file, format!("{}\n", "cd".repeat(32))).unwrap();
        let path = file.to_str().unwrap().to_owned();
        let from_file = |k: &str| (k == "AGENT_OTP_AUDIT_KEY_FILE").then(|| path.clone());
        assert_eq!(
            AuditKey::resolve(dir.path(), from_file, true)
                .unwrap()
                .to_hex(),
            "cd".repeat(32)
        );
    }
}
