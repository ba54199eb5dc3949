//! Rate limits: per agent key, per client address for failed authentications and login links,
//! per Telegram user for link codes. Everything here is in memory and never touches the database,
//! so a flood is turned away before it costs a lookup.
//!
//! Each limiter is a map of GCRA cells (a token bucket kept as one "theoretical arrival time"),
//! split into shards behind their own mutex so concurrent requests rarely meet on a lock. Keys are
//! hashed with a per-process random key, so callers cannot aim collisions. Idle entries — a bucket
//! that has refilled — are dropped when a shard grows, so memory stays bounded; when a shard is
//! still full of live entries a new key is let through untracked (fail open) rather than locking
//! everybody out.
//!
//! Time comes from the injected [`Clock`](crate::clock::Clock), so tests refill buckets by
//! advancing it instead of sleeping.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Timestamp;

pub(crate) mod body;
pub(crate) mod forwarded;

pub(crate) use body::{ByteBudget, ByteRate};
pub(crate) use forwarded::{ClientKey, IpNet, client_ip};

/// Shards per limiter; a power of two.
const SHARDS: usize = 16;
/// Entries one shard holds before idle ones are swept; beyond that, new keys go untracked.
const SHARD_CAPACITY: usize = 4096;
/// Least time between two sweeps of a full shard, µs.
const SWEEP_EVERY_US: i64 = 1_000_000;
/// How long an agent key that authenticated stays tracked, and so may pass a client address
/// that is blocked for failed authentications (see [`Limiter::is_known`]).
const KNOWN_FOR: Duration = Duration::from_secs(3600);

/// `count` requests per `period`: a burst of `count`, refilled evenly over `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl Rate {
    /// Parses `N/s`, `N/min` or `N/h` (e.g. `600/min`); `off` (or `0`) means no limit.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text == "0" {
            return Ok(None);
        }
        let err = || format!("{text:?} is not a rate like 600/min, 20/s, 10/h or off");
        let (n, unit) = text.split_once('/').ok_or_else(err)?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(err()),
        };
        if !(1..=1_000_000).contains(&count) {
            return Err(format!(
                "{text:?}: the count must be 1–1000000 (or say off)"
            ));
        }
        Ok(Some(Rate { count, period }))
    }

    fn period_us(self) -> i64 {
        i64::try_from(self.period.as_micros()).unwrap_or(i64::MAX)
    }

    /// Microseconds between two tokens.
    fn interval_us(self) -> i64 {
        (self.period_us() / i64::from(self.count)).max(1)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Every limit that is not a fixed input rule; part of [`Config`](crate::config::Config).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per agent key (all agent routes together).
    pub agent: Option<Rate>,
    /// Failed agent-key or admin-token authentications per client address.
    pub auth_failures: Option<Rate>,
    /// Login-link redemptions that fail, per client address.
    pub login: Option<Rate>,
    /// Telegram link codes that fail, per Telegram user.
    pub telegram_link: Option<Rate>,
    /// Requests one agent may have waiting for a human at once (0: no cap).
    pub max_pending_per_agent: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a reverse proxy).
    pub trust_forwarded_for: bool,

    // Slow and greedy clients, proxies and session age (see `body` and `forwarded`).
    /// Longest wait for a request's headers (actix's `client_request_timeout`).
    pub header_timeout: Duration,
    /// Longest wait for a request's whole body, from the end of its headers.
    pub body_timeout: Duration,
    /// Bytes of new permission requests one agent key may have stored per period.
    pub stored_bytes_per_agent: Option<ByteRate>,
    /// Proxies whose `X-Forwarded-For` entries are walked past (implies trusting the header).
    pub trusted_proxies: Vec<IpNet>,
    /// How long a web session lasts from login.
    pub session_max_age: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        let rate = |count, secs| {
            Some(Rate {
                count,
                period: Duration::from_secs(secs),
            })
        };
        Limits {
            agent: rate(600, 60),
            auth_failures: rate(30, 60),
            login: rate(10, 60),
            telegram_link: rate(10, 3600),
            max_pending_per_agent: 20,
            trust_forwarded_for: false,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            stored_bytes_per_agent: Some(ByteRate {
                bytes: 8 << 20,
                period: Duration::from_secs(3600),
            }),
            trusted_proxies: Vec::new(),
            session_max_age: Duration::from_secs(crate::domain::SESSION_TTL_SECS.unsigned_abs()),
        }
    }
}

/// Where a caller stands against one limit, sent as `X-RateLimit-*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The burst size (`X-RateLimit-Limit`).
    pub limit: u32,
    /// Requests left right now (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again (`X-RateLimit-Reset`).
    pub reset_secs: u64,
}

/// A refused request: its quota and when to try again (`Retry-After`, at least 1 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    pub quota: Quota,
    pub retry_after_secs: u64,
}

impl From<Denied> for crate::error::Error {
    fn from(d: Denied) -> crate::error::Error {
        crate::error::Error::RateLimited {
            retry_after_secs: d.retry_after_secs,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    /// When the bucket will be full again, µs since the epoch (GCRA's theoretical arrival time).
    tat: i64,
    /// Kept at least until then, µs (for [`Limiter::is_known`]).
    keep_until: i64,
}

/// Keys are already SipHash values with a random key; no need to hash them twice.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One shard: its entries and when idle ones were last swept out (µs).
#[derive(Default)]
struct Shard {
    map: HashMap<u64, Cell, BuildHasherDefault<Prehashed>>,
    swept_at: i64,
}

/// One limit over many keys. With no rate it allows everything but still tracks the keys it is
/// asked about, so [`Limiter::is_known`] works whether or not there is a limit.
pub struct Limiter {
    rate: Option<Rate>,
    /// How long a key stays tracked after its last request even once its bucket is full, µs.
    keep_us: i64,
    hasher: RandomState,
    shards: Box<[Padded]>,
}

/// A shard on cache lines of its own, so threads on neighbouring shards do not slow each other.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

impl Limiter {
    /// A limiter that forgets a key as soon as its bucket has refilled.
    pub fn new(rate: Option<Rate>) -> Limiter {
        Limiter::keeping(rate, Duration::ZERO)
    }

    /// A limiter that keeps each key at least `keep` after its last request.
    pub fn keeping(rate: Option<Rate>, keep: Duration) -> Limiter {
        Limiter {
            rate,
            keep_us: i64::try_from(keep.as_micros()).unwrap_or(i64::MAX),
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| Padded(Mutex::new(Shard::default())))
                .collect(),
        }
    }

    /// The limit in force, if any.
    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    fn slot(&self, key: impl Hash) -> (u64, &Mutex<Shard>) {
        let h = self.hasher.hash_one(key);
        (h, &self.shards[(h as usize) & (SHARDS - 1)].0)
    }

    /// Takes one request from `key`'s bucket, or says when to come back.
    /// `Ok(None)` when there is no limit, or the key could not be tracked (see the module doc).
    pub fn check(&self, key: impl Hash, now: Timestamp) -> Result<Option<Quota>, Denied> {
        let now = micros(now);
        let (h, shard) = self.slot(key);
        let mut shard = lock(shard);
        if let Some(cell) = shard.map.get_mut(&h) {
            return self.take_cell(cell, now);
        }
        if (self.rate.is_none() && self.keep_us == 0) || !make_room(&mut shard, now) {
            return Ok(None);
        }
        let cell = shard.map.entry(h).or_insert(Cell {
            tat: now,
            keep_until: now,
        });
        self.take_cell(cell, now)
    }

    /// Like [`Limiter::check`], but only for a key seen before; `None` if it is not tracked.
    pub fn check_known(
        &self,
        key: impl Hash,
        now: Timestamp,
    ) -> Option<Result<Option<Quota>, Denied>> {
        let (h, shard) = self.slot(key);
        let mut shard = lock(shard);
        let cell = shard.map.get_mut(&h)?;
        Some(self.take_cell(cell, micros(now)))
    }

    fn take_cell(&self, cell: &mut Cell, now: i64) -> Result<Option<Quota>, Denied> {
        cell.keep_until = now.saturating_add(self.keep_us);
        let Some(rate) = self.rate else {
            return Ok(None);
        };
        let (t, period) = (rate.interval_us(), rate.period_us());
        let next = cell.tat.max(now) + t;
        if next - now > period {
            let quota = quota(rate, cell.tat.max(now) - now);
            return Err(Denied {
                quota,
                retry_after_secs: ceil_secs(next - now - period).max(1),
            });
        }
        cell.tat = next;
        Ok(Some(quota(rate, next - now)))
    }

    /// Whether `key`'s bucket is empty (without taking from it): `Some` says until when.
    pub fn exhausted(&self, key: impl Hash, now: Timestamp) -> Option<Denied> {
        let rate = self.rate?;
        let now = micros(now);
        let (h, shard) = self.slot(key);
        let tat = lock(shard).map.get(&h)?.tat;
        let next = tat.max(now) + rate.interval_us();
        (next - now > rate.period_us()).then(|| Denied {
            quota: quota(rate, tat.max(now) - now),
            retry_after_secs: ceil_secs(next - now - rate.period_us()).max(1),
        })
    }

    /// Where `key` stands now, taking nothing (`None` when there is no limit).
    pub fn quota(&self, key: impl Hash, now: Timestamp) -> Option<Quota> {
        let rate = self.rate?;
        let now = micros(now);
        let (h, shard) = self.slot(key);
        let tat = lock(shard).map.get(&h).map_or(now, |c| c.tat);
        Some(quota(rate, tat.max(now) - now))
    }

    /// Charges one failure to `key` even if its bucket is already empty (a caller who keeps
    /// failing keeps being refused).
    pub fn charge(&self, key: impl Hash, now: Timestamp) {
        let Some(rate) = self.rate else { return };
        let now = micros(now);
        let (h, shard) = self.slot(key);
        let mut shard = lock(shard);
        if !shard.map.contains_key(&h) && !make_room(&mut shard, now) {
            return;
        }
        let cell = shard.map.entry(h).or_insert(Cell {
            tat: now,
            keep_until: now,
        });
        // Never more than one period ahead: the bucket is empty, not in debt for hours.
        cell.tat = (cell.tat.max(now) + rate.interval_us()).min(now + rate.period_us() + 1);
    }

    /// Gives back one request taken by [`Limiter::check`] (the attempt turned out fine).
    pub fn refund(&self, key: impl Hash) {
        let Some(rate) = self.rate else { return };
        let (h, shard) = self.slot(key);
        if let Some(cell) = lock(shard).map.get_mut(&h) {
            cell.tat -= rate.interval_us();
        }
    }

    /// Whether `key` is tracked: it was checked recently (within the keep time, for
    /// [`Limiter::keeping`]).
    pub fn is_known(&self, key: impl Hash) -> bool {
        let (h, shard) = self.slot(key);
        lock(shard).map.contains_key(&h)
    }

    /// Forgets `key` (e.g. a key that stopped authenticating).
    pub fn forget(&self, key: impl Hash) {
        let (h, shard) = self.slot(key);
        lock(shard).map.remove(&h);
    }

    /// Entries held across all shards (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.0).map.len()).sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A poisoned shard only means a panic elsewhere while holding it; the map is still sound.
fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Makes room for one more entry by dropping idle ones; `false` if the shard is still full. A
/// full shard is swept at most once a second, so a flood of new keys costs no more than that.
fn make_room(shard: &mut Shard, now: i64) -> bool {
    if shard.map.len() < SHARD_CAPACITY {
        return true;
    }
    if now.saturating_sub(shard.swept_at) < SWEEP_EVERY_US {
        return false;
    }
    shard.swept_at = now;
    shard.map.retain(|_, c| c.tat > now || c.keep_until > now);
    shard.map.len() < SHARD_CAPACITY
}

fn micros(t: Timestamp) -> i64 {
    t.0.saturating_mul(1000)
}

fn ceil_secs(us: i64) -> u64 {
    u64::try_from((us.max(0) + 999_999) / 1_000_000).unwrap_or(0)
}

/// The quota when the bucket is full again in `full_in` µs.
fn quota(rate: Rate, full_in: i64) -> Quota {
    let (t, period) = (rate.interval_us(), rate.period_us());
    let room = (period - full_in).max(0) / t;
    Quota {
        limit: rate.count,
        remaining: u32::try_from(room).unwrap_or(u32::MAX).min(rate.count),
        reset_secs: ceil_secs(full_in),
    }
}

/// The limiters of one running service.
pub struct RateLimiter {
    pub limits: Limits,
    /// Per agent key (hashed key); also remembers keys that authenticated.
    pub agents: Limiter,
    /// Failed authentications per client address.
    pub auth_failures: Limiter,
    /// Failed login-link redemptions per client address.
    pub login: Limiter,
    /// Failed Telegram link codes per Telegram user id.
    pub telegram_link: Limiter,
    /// Stored request bytes per agent key.
    pub stored: ByteBudget,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> RateLimiter {
        RateLimiter {
            agents: Limiter::keeping(limits.agent, KNOWN_FOR),
            auth_failures: Limiter::new(limits.auth_failures),
            login: Limiter::new(limits.login),
            telegram_link: Limiter::new(limits.telegram_link),
            stored: ByteBudget::new(limits.stored_bytes_per_agent),
            limits,
        }
    }
}

/// What [`RateLimiter::before_lookup`] learned, for [`RateLimiter::after_lookup`].
pub struct AuthAttempt {
    client: ClientKey,
    /// The key authenticated recently and its request was already counted.
    known: bool,
    /// The key's quota after counting this request, for the answer's headers.
    pub quota: Option<Quota>,
}

impl RateLimiter {
    /// Before a presented agent key (`key_hash`, or an admin token with `agent: false`) from
    /// `client` is looked up: a known key over its rate is refused; an unknown one is refused
    /// while its client address is blocked for failed authentications. Keys that authenticated
    /// recently pass a blocked address, so a flood of bad keys does not lock out the honest
    /// agents beside it.
    pub fn before_lookup(
        &self,
        client: ClientKey,
        key_hash: &str,
        agent: bool,
        now: Timestamp,
    ) -> Result<AuthAttempt, Denied> {
        if agent {
            match self.agents.check_known(key_hash, now) {
                Some(Ok(quota)) => {
                    return Ok(AuthAttempt {
                        client,
                        known: true,
                        quota,
                    });
                }
                Some(Err(denied)) => return Err(denied),
                None => {}
            }
        }
        if let Some(denied) = self.auth_failures.exhausted(client, now) {
            return Err(denied);
        }
        Ok(AuthAttempt {
            client,
            known: false,
            quota: None,
        })
    }

    /// After the lookup of an agent key (or admin token, `agent: false`): a failure is charged
    /// to the client address, a first success starts counting the key's requests. Returns the
    /// quota this counting gives (the one [`AuthAttempt::quota`] carried is already shown).
    pub fn after_lookup(
        &self,
        attempt: AuthAttempt,
        key_hash: &str,
        agent: bool,
        ok: bool,
        now: Timestamp,
    ) -> Result<Option<Quota>, Denied> {
        if !ok {
            self.auth_failures.charge(attempt.client, now);
            if attempt.known {
                self.agents.forget(key_hash);
            }
            return Ok(None);
        }
        if agent && !attempt.known {
            return self.agents.check(key_hash, now);
        }
        Ok(None)
    }

    /// A key that authenticated from memory turned out revoked or replaced: charge the failure to
    /// the client's address, as a refused lookup would be, and stop treating the key as known.
    pub fn refuse_remembered(&self, client: ClientKey, key_hash: &str, now: Timestamp) {
        self.auth_failures.charge(client, now);
        self.agents.forget(key_hash);
    }
}

#[cfg(test)]
mod tests;
