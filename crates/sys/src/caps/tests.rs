use super::*;

#[test]
fn masks_match_the_kernel_numbers() {
    // CAP_DAC_READ_SEARCH = 2, CAP_NET_ADMIN = 12, CAP_SYS_PTRACE = 19.
    let cases: [(&[Capability], u64); 4] = [
        (&[], 0),
        (&[Capability::DacReadSearch], 1 << 2),
        (&[Capability::NetAdmin], 1 << 12),
        (&BROKER_CAPABILITIES, (1 << 2) | (1 << 12) | (1 << 19)),
    ];
    for (caps, mask) in cases {
        assert_eq!(capability_mask(caps), mask, "{caps:?}");
    }
}

#[test]
fn keeping_only_the_broker_set_drops_everything_else_on_this_thread() {
    if !rustix::process::geteuid().is_root() {
        if std::env::var("GATEHOUSE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
            panic!("needs root: dropping capabilities");
        }
        eprintln!("SKIPPED (needs root): dropping capabilities");
        return;
    }
    // Capabilities are per thread: only this new thread loses them.
    let (effective, bounding_admin, bounding_sys_admin) = std::thread::spawn(|| {
        keep_only_capabilities(&BROKER_CAPABILITIES).unwrap();
        (
            effective_capabilities().unwrap(),
            capability_is_in_bounding_set(CapabilitySet::NET_ADMIN).unwrap(),
            capability_is_in_bounding_set(CapabilitySet::SYS_ADMIN).unwrap(),
        )
    })
    .join()
    .unwrap();
    assert_eq!(effective, capability_mask(&BROKER_CAPABILITIES));
    assert!(bounding_admin);
    assert!(!bounding_sys_admin);
    assert_ne!(
        effective_capabilities().unwrap(),
        effective,
        "the test thread keeps its own"
    );
}
