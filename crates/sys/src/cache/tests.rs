use super::*;

#[test]
fn bounded_evicts_oldest() {
    let mut c = Bounded::new(2);
    c.insert(1, "a");
    c.insert(2, "b");
    c.insert(3, "c");
    assert_eq!(c.get(&1), None);
    assert_eq!(c.get(&2), Some("b"));
    assert_eq!(c.get(&3), Some("c"));
}

#[test]
fn bounded_zero_capacity_holds_nothing() {
    let mut c = Bounded::new(0);
    c.insert(1, 1);
    assert_eq!(c.get(&1), None);
}

#[test]
fn recent_pids_most_recent_first() {
    let mut r = RecentPids::new(3);
    for p in [1, 2, 3, 1, 4] {
        r.touch(p);
    }
    assert_eq!(r.snapshot(), vec![4, 1, 3]);
}

#[test]
fn recent_pids_forget() {
    let mut r = RecentPids::new(4);
    for p in [1, 2, 3] {
        r.touch(p);
    }
    r.forget(&[2, 9]);
    assert_eq!(r.snapshot(), vec![3, 1]);
}
