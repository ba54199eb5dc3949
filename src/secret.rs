//! Secrets: agent keys (`ak_…`), admin tokens (`adm_…`) and permission tokens (`otp_…`).
//!
//! They are drawn from the operating system's RNG, shown to their owner once, stored only as
//! SHA-256 hex, and compared in constant time. [`Secret`] never prints its value in `Debug`.

use std::fmt;

use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of the random part of every secret: 40 base62 chars ≈ 238 bits.
pub(crate) const RANDOM_CHARS: usize = 40;

/// Prefix of agent API keys.
pub(crate) const AGENT_KEY_PREFIX: &str = "ak_";
/// Prefix of admin API tokens.
pub(crate) const ADMIN_TOKEN_PREFIX: &str = "adm_";
/// Prefix of protected services' keys.
pub(crate) const SERVICE_KEY_PREFIX: &str = "sk_";
/// Prefix of permission tokens.
pub(crate) const PERMISSION_TOKEN_PREFIX: &str = "otp_";

/// A secret value in memory. `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that must not be logged.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The plaintext, for the single place that hands it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 hex of the plaintext: the only form that is stored.
    pub fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The OS random number generator failed; nothing can be issued safely.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RngError;

/// A new secret: `prefix` followed by [`RANDOM_CHARS`] base62 characters from the OS RNG.
pub(crate) fn generate(prefix: &str) -> Result<Secret, RngError> {
    let mut out = String::with_capacity(prefix.len() + RANDOM_CHARS);
    out.push_str(prefix);
    let mut buf = [0u8; 64];
    while out.len() < prefix.len() + RANDOM_CHARS {
        SysRng.try_fill_bytes(&mut buf).map_err(|_| RngError)?;
        // Rejection sampling keeps every character equally likely: 248 = 4 × 62.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == prefix.len() + RANDOM_CHARS {
                break;
            }
            out.push(char::from(BASE62[usize::from(*b % 62)]));
        }
    }
    Ok(Secret(out))
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Bytes, not chars: `String::push` encodes each digit as UTF-8 and checks capacity.
    let mut digits = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        digits.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]);
    }
    String::from_utf8(digits).unwrap_or_else(|_| unreachable!("hex digits are ASCII"))
}

/// Constant-time equality of two stored hashes (or any two strings of public length).
pub(crate) fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The hash of a presented secret, compared in constant time against a stored hash.
pub(crate) fn matches_hash(presented: &str, stored_hash: &str) -> bool {
    hashes_equal(&sha256_hex(presented.as_bytes()), stored_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_prefix_length_and_alphabet() {
        let a = generate(PERMISSION_TOKEN_PREFIX).unwrap();
        let b = generate(PERMISSION_TOKEN_PREFIX).unwrap();
        assert!(a.expose().starts_with("otp_"));
        assert_eq!(a.expose().len(), 4 + RANDOM_CHARS);
        assert!(a.expose()[4..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "***");
    }

    #[test]
    fn hashing_and_comparison() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let s = Secret::new("ak_x");
        assert!(matches_hash("ak_x", &s.hash()));
        assert!(!matches_hash("ak_y", &s.hash()));
        assert!(!hashes_equal("ab", "abc"));
    }
}
