//! The storage budget of each agent key: the bytes of the bodies of its new permission requests
//! ([`ByteRate`], e.g. 8 MiB per hour), charged and given back by `api::bodies`. Budgets live in
//! memory (a restart fills them); at most 4096 keys are tracked, spent-out ones first swept, and
//! a new key that still does not fit goes uncounted rather than refused (as the rate limiters do).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Timestamp;

/// Agent keys tracked before spent-out budgets are swept.
const CAPACITY: usize = 4096;

/// `bytes` per `period`: a budget of `bytes`, refilled evenly over `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRate {
    pub bytes: u64,
    pub period: Duration,
}

impl ByteRate {
    /// Parses `8MiB/h`, `512KiB/min`, `1GiB/day`, `100000B/s`; `off` means no cap.
    pub fn parse(text: &str) -> Result<Option<ByteRate>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text == "0" {
            return Ok(None);
        }
        let err = || format!("{text:?} is not a size per time like 8MiB/h, 512KiB/min or off");
        let (size, unit) = text.split_once('/').ok_or_else(err)?;
        let size = size.trim();
        let digits = size
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(size.len());
        let n: u64 = size[..digits].parse().map_err(|_| err())?;
        let scale: u64 = match size[digits..].trim() {
            "" | "B" => 1,
            "KiB" | "K" | "k" => 1 << 10,
            "MiB" | "M" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            _ => return Err(err()),
        };
        let period = match unit.trim() {
            "s" => 1,
            "min" | "m" => 60,
            "h" => 3600,
            "d" | "day" => 86_400,
            _ => return Err(err()),
        };
        let bytes = n.checked_mul(scale).filter(|b| *b > 0).ok_or_else(err)?;
        Ok(Some(ByteRate {
            bytes,
            period: Duration::from_secs(period),
        }))
    }
}

impl std::fmt::Display for ByteRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.bytes;
        let size = match b {
            _ if b.is_multiple_of(1 << 30) => format!("{} GiB", b >> 30),
            _ if b.is_multiple_of(1 << 20) => format!("{} MiB", b >> 20),
            _ if b.is_multiple_of(1 << 10) => format!("{} KiB", b >> 10),
            _ => format!("{b} bytes"),
        };
        let period = match self.period.as_secs() {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            86_400 => "day",
            _ => "period",
        };
        write!(f, "{size} per {period}")
    }
}

/// Stored bytes per agent key: a GCRA over bytes. Each entry is when the budget is whole again,
/// in µs × `bytes` (so a byte costs exactly `period` µs and nothing is rounded away).
pub struct ByteBudget {
    rate: Option<ByteRate>,
    full_at: Mutex<HashMap<String, i128>>,
}

impl ByteBudget {
    pub fn new(rate: Option<ByteRate>) -> ByteBudget {
        ByteBudget {
            rate,
            full_at: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `bytes` from `key`'s budget, or says in how many seconds to come back.
    pub fn take(&self, key: &str, bytes: usize, now: Timestamp) -> Result<(), u64> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let cap = i128::from(rate.bytes);
        let period = i128::try_from(rate.period.as_micros()).unwrap_or(i128::MAX / 4);
        let now = i128::from(now.0) * 1000 * cap;
        let cost = i128::try_from(bytes).unwrap_or(i128::MAX / 4) * period;
        let mut map = self
            .full_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CAPACITY && !map.contains_key(key) {
            map.retain(|_, full| *full > now);
        }
        let full = map.get(key).copied().unwrap_or(now).max(now);
        let after = full + cost;
        if after - now > period * cap {
            // Whole seconds until enough has refilled for this body, at least 1.
            let wait_us = (after - now - period * cap + cap - 1) / cap;
            return Err(u64::try_from(wait_us / 1_000_000 + 1).unwrap_or(u64::MAX));
        }
        if map.len() < CAPACITY || map.contains_key(key) {
            map.insert(key.to_owned(), after);
        }
        Ok(())
    }

    /// Gives back `bytes` taken by [`ByteBudget::take`] (the request was not stored).
    pub fn give_back(&self, key: &str, bytes: usize) {
        let Some(rate) = self.rate else { return };
        let period = i128::try_from(rate.period.as_micros()).unwrap_or(i128::MAX / 4);
        let cost = i128::try_from(bytes).unwrap_or(i128::MAX / 4) * period;
        let mut map = self
            .full_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(full) = map.get_mut(key) {
            *full -= cost;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_rates_parse_and_print() {
        let r = ByteRate::parse("8MiB/h").unwrap().unwrap();
        assert_eq!(r.bytes, 8 << 20);
        assert_eq!(r.period, Duration::from_secs(3600));
        assert_eq!(r.to_string(), "8 MiB per hour");
        assert_eq!(
            ByteRate::parse("512KiB/min").unwrap().unwrap().to_string(),
            "512 KiB per minute"
        );
        assert_eq!(
            ByteRate::parse("1000/d").unwrap().unwrap().to_string(),
            "1000 bytes per day"
        );
        assert_eq!(ByteRate::parse("off").unwrap(), None);
        for bad in ["8MB/h", "lots", "8MiB/week", "/h", "0MiB/h"] {
            assert!(ByteRate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_budget_is_spent_refills_and_gives_back() {
        let rate = ByteRate::parse("1000B/s").unwrap();
        let b = ByteBudget::new(rate);
        let t0 = Timestamp(1_000_000);
        assert!(b.take("k", 600, t0).is_ok());
        assert!(b.take("k", 400, t0).is_ok());
        assert_eq!(b.take("k", 1, t0), Err(1), "spent: come back in a second");
        assert!(b.take("other", 1000, t0).is_ok(), "per key");
        b.give_back("k", 400);
        assert!(b.take("k", 400, t0).is_ok(), "given back");
        assert!(
            b.take("k", 500, Timestamp(t0.0 + 500)).is_ok(),
            "half refilled"
        );
        assert!(
            b.take("k", 2000, Timestamp(t0.0 + 10_000)).is_err(),
            "over the cap"
        );
        assert!(ByteBudget::new(None).take("k", usize::MAX, t0).is_ok());
    }
}
