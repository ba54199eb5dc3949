use std::net::IpAddr;

use super::*;

fn at(ms: i64) -> Timestamp {
    Timestamp(1_780_000_000_000 + ms)
}

fn rate(text: &str) -> Option<Rate> {
    Rate::parse(text).unwrap()
}

#[test]
fn rates_parse_and_print() {
    assert_eq!(
        rate("600/min"),
        Some(Rate {
            count: 600,
            period: Duration::from_secs(60)
        })
    );
    assert_eq!(rate(" 20/s ").unwrap().to_string(), "20/s");
    assert_eq!(rate("10/h").unwrap().to_string(), "10/h");
    assert_eq!(rate("off"), None);
    assert_eq!(rate("0"), None);
    for bad in ["", "10", "10/day", "x/min", "-1/s", "0/s", "2000000/s"] {
        assert!(Rate::parse(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn a_burst_then_refused_then_refilled_by_the_clock() {
    let l = Limiter::new(rate("3/min"));
    let q = l.check("k", at(0)).unwrap().unwrap();
    assert_eq!((q.limit, q.remaining, q.reset_secs), (3, 2, 20));
    assert_eq!(l.check("k", at(0)).unwrap().unwrap().remaining, 1);
    assert_eq!(l.check("k", at(0)).unwrap().unwrap().remaining, 0);
    let d = l.check("k", at(0)).unwrap_err();
    assert_eq!(d.retry_after_secs, 20);
    assert_eq!((d.quota.remaining, d.quota.reset_secs), (0, 60));
    assert!(l.exhausted("k", at(0)).is_some());
    // Other keys are not affected.
    assert!(l.check("other", at(0)).is_ok());
    // One token back after 20 s, all three after 60 s.
    assert!(l.check("k", at(19_999)).is_err());
    assert_eq!(l.check("k", at(20_000)).unwrap().unwrap().remaining, 0);
    assert!(l.exhausted("k", at(80_000)).is_none());
    assert_eq!(l.check("k", at(80_000)).unwrap().unwrap().remaining, 2);
}

#[test]
fn refunds_charges_and_no_limit() {
    let l = Limiter::new(rate("2/s"));
    l.check("k", at(0)).unwrap();
    l.check("k", at(0)).unwrap();
    l.refund("k");
    assert!(l.check("k", at(0)).is_ok(), "the refund gave one back");
    // Charges keep an empty bucket empty, but never more than one period ahead.
    for _ in 0..100 {
        l.charge("k", at(0));
    }
    assert!(l.exhausted("k", at(0)).is_some());
    assert!(l.exhausted("k", at(1_001)).is_none());

    let free = Limiter::new(None);
    for _ in 0..1000 {
        assert_eq!(free.check("k", at(0)), Ok(None));
    }
    assert!(free.is_empty(), "nothing to remember without a limit");
    let kept = Limiter::keeping(None, Duration::from_secs(60));
    assert_eq!(kept.check("k", at(0)), Ok(None));
    assert!(kept.is_known("k") && !kept.is_known("other"));
    assert!(kept.check_known("other", at(0)).is_none());
    kept.forget("k");
    assert!(!kept.is_known("k"));
}

#[test]
fn memory_stays_bounded_and_idle_entries_go() {
    let l = Limiter::new(rate("1/s"));
    let total = SHARDS * SHARD_CAPACITY;
    for i in 0..total * 2 {
        let _ = l.check(i, at(0));
    }
    assert!(l.len() <= total, "{} entries", l.len());
    // Once every bucket has refilled, new keys sweep the old ones out.
    for i in 0..total {
        let _ = l.check(total * 10 + i, at(5_000));
    }
    assert!(l.len() <= total);
    assert!(l.check(0usize, at(5_000)).is_ok());
}

#[test]
fn client_keys_group_ipv6_by_network() {
    let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(ClientKey::from(a), ClientKey::from(b));
    assert_ne!(ClientKey::from(a), ClientKey::from(c));
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    let v4: IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(ClientKey::from(mapped), ClientKey::from(v4));
}
