use super::*;

fn hash(c: char) -> String {
    c.to_string().repeat(64)
}

#[test]
fn the_signer_never_contradicts_itself() {
    let signer = LocalSigner::new(CheckpointKey::from_seed(&[3; 32]));
    let t = "2026-01-01T00:00:00.000Z";
    // (head_seq, head_hash, time, signed?)
    let steps: &[(u64, String, &str, bool)] = &[
        (5, hash('a'), t, true),
        (5, hash('a'), t, true),
        (5, hash('b'), t, false),
        (4, hash('c'), t, false),
        (9, hash('d'), t, true),
        (9, "A".repeat(64), t, false),
        (10, hash('e'), "yesterday", false),
        (10, hash('e'), t, true),
    ];
    for (seq, h, time, want) in steps {
        let got = signer.sign(*seq, h, time, Some(10));
        assert_eq!(got.is_ok(), *want, "{seq} {h} {time}: {got:?}");
        if let Ok(cp) = got {
            let public = CheckpointKey::from_seed(&[3; 32]).public();
            assert!(public.verifies(&cp));
        }
    }
}
