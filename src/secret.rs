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

/// A new secret: `prefix` (a type prefix, and for a permission token the request it names, which
/// is not secret) followed by [`RANDOM_CHARS`] base62 characters from the OS RNG.
pub(crate) fn generate(prefix: &str) -> Result<Secret, RngError> {
    let end = prefix.len() + RANDOM_CHARS;
    let mut out = String::with_capacity(end);
    out.push_str(prefix);
    let mut buf = [0u8; 64];
    while out.len() < end {
        SysRng.try_fill_bytes(&mut buf).map_err(|_| RngError)?;
        // Rejection sampling keeps every character equally likely: 248 = 4 × 62.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == end {
                break;
            }
            out.push(char::from(BASE62[usize::from(*b % 62)]));
        }
    }
    Ok(Secret(out))
}

/// Base62 characters that hold any 128-bit number: 62^22 > 2^128.
pub(crate) const U128_CHARS: usize = 22;

/// `n` in [`U128_CHARS`] base62 characters, most significant first (zero-padded, so one number
/// has one spelling).
pub(crate) fn base62_u128(mut n: u128) -> String {
    let mut digits = [b'0'; U128_CHARS];
    for d in digits.iter_mut().rev() {
        *d = BASE62[usize::try_from(n % 62).unwrap_or(0)];
        n /= 62;
    }
    String::from_utf8(digits.to_vec()).unwrap_or_else(|_| unreachable!("base62 is ASCII"))
}

/// The number [`base62_u128`] spelled as `text`: `None` unless it is exactly [`U128_CHARS`]
/// base62 characters of a number below 2^128.
pub(crate) fn parse_base62_u128(text: &str) -> Option<u128> {
    if text.len() != U128_CHARS {
        return None;
    }
    text.bytes().try_fold(0u128, |n, c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        n.checked_mul(62)?.checked_add(u128::from(digit))
    })
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Into a buffer of the final size: growing one (or `String::push`, which encodes each digit
    // as UTF-8) checks capacity at every digit.
    let mut digits = vec![0; bytes.len() * 2];
    for (pair, b) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    String::from_utf8(digits).unwrap_or_else(|_| unreachable!("hex digits are ASCII"))
}

/// Constant-time equality of two stored hashes (or any two strings of public length).
///
/// Compared eight bytes at a time: `subtle` hides each comparison's result from the optimiser
/// behind a memory round trip, which per byte was a measurable part of a verify (three 64-byte
/// hashes).
pub(crate) fn hashes_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (words_a, words_b) = (a.chunks_exact(8), b.chunks_exact(8));
    // Fewer than eight bytes are left over; they are compared byte by byte.
    let mut same = words_a.remainder().ct_eq(words_b.remainder());
    for (x, y) in words_a.zip(words_b) {
        same &= word(x).ct_eq(&word(y));
    }
    bool::from(same)
}

/// Eight bytes as one word.
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
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
    fn base62_numbers_have_one_spelling_and_round_trip() {
        for n in [0, 1, 61, 62, u128::from(u64::MAX), u128::MAX - 1, u128::MAX] {
            let text = base62_u128(n);
            assert_eq!(text.len(), U128_CHARS);
            assert_eq!(parse_base62_u128(&text), Some(n), "{text}");
        }
        assert_eq!(base62_u128(61), format!("{}z", "0".repeat(21)));
        // Too short, too long, outside the alphabet, above 2^128.
        for bad in [
            "",
            "0",
            &"0".repeat(23),
            &format!("{}-", "0".repeat(21)),
            &format!("{}é", "0".repeat(20)),
            &"z".repeat(22),
        ] {
            assert_eq!(parse_base62_u128(bad), None, "{bad:?}");
        }
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

    /// Word by word, a difference in any byte still counts: in the first, a middle and the last
    /// word, and in the bytes left over when the length is not a multiple of eight.
    #[test]
    fn hashes_equal_sees_a_difference_in_every_byte() {
        for len in [0, 1, 7, 8, 9, 63, 64, 65] {
            let a: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            assert!(hashes_equal(&a, &a.clone()), "len {len}");
            for i in 0..len {
                let mut b = a.clone().into_bytes();
                b[i] ^= 0x01;
                let b = String::from_utf8(b).unwrap();
                assert!(!hashes_equal(&a, &b), "len {len}, byte {i}");
            }
        }
        assert!(!hashes_equal("abc", "abc\0"));
        assert!(hashes_equal("", ""));
    }
}
