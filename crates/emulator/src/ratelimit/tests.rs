use std::time::{Duration, Instant};

use super::{Admission, Bucket, Limits};
use crate::endpoint::Category;

#[test]
fn bucket_allows_burst_then_refills() {
    let t0 = Instant::now();
    let mut bucket = Bucket::new(20, t0);
    let admitted = (0..30).filter(|_| bucket.take(t0).is_ok()).count();
    assert_eq!(admitted, 20);
    let wait = bucket.take(t0).unwrap_err();
    assert_eq!(wait, Duration::from_millis(50));
    assert!(bucket.take(t0 + Duration::from_millis(49)).is_err());
    assert!(bucket.take(t0 + Duration::from_millis(100)).is_ok());
    let t1 = t0 + Duration::from_secs(10);
    let admitted = (0..30).filter(|_| bucket.take(t1).is_ok()).count();
    assert_eq!(admitted, 20, "refill is capped at one second's worth");
}

#[test]
fn limits_by_category() {
    let t0 = Instant::now();
    let limits = Limits::new(t0);
    let other = (0..10)
        .filter(|_| matches!(limits.admit(Category::Other, t0), Admission::Admitted(_)))
        .count();
    assert_eq!(other, 5);
    let mut permits = Vec::new();
    for _ in 0..5 {
        match limits.admit(Category::Identity, t0) {
            Admission::Admitted(permit) => permits.push(permit),
            Admission::Throttled { .. } => panic!("throttled early"),
        }
    }
    assert!(matches!(
        limits.admit(Category::Identity, t0),
        Admission::Throttled {
            retry_after_secs: 1
        }
    ));
    permits.pop();
    assert!(matches!(
        limits.admit(Category::Identity, t0),
        Admission::Admitted(_)
    ));
}
