use super::{choose, selector, SelectError, Selector};
use crate::config::EmulatorConfig;
use crate::query::Query;

const SYSTEM_CLIENT: &str = "1e5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b708";
const STORAGE_CLIENT: &str = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809";
const VAULT_CLIENT: &str = "4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb";

fn pick(config: &EmulatorConfig, raw: &str) -> Result<String, SelectError> {
    let query = Query::parse(Some(raw)).unwrap();
    let sel = selector(&query)?;
    choose(config, sel).map(|c| c.client_id)
}

#[test]
fn demo_selection_table() {
    let demo = EmulatorConfig::demo();
    let storage_rid = demo.user_assigned[0].resource_id.to_uppercase();
    let cases: Vec<(String, Result<&str, SelectError>)> = vec![
        ("".into(), Ok(SYSTEM_CLIENT)),
        (format!("client_id={STORAGE_CLIENT}"), Ok(STORAGE_CLIENT)),
        (
            format!("client_id={}", STORAGE_CLIENT.to_uppercase()),
            Ok(STORAGE_CLIENT),
        ),
        (format!("client_id={SYSTEM_CLIENT}"), Ok(SYSTEM_CLIENT)),
        (
            "object_id=5C9EAFB0-C1D2-43E4-B5A6-B7C8D9E0F10C".into(),
            Ok(VAULT_CLIENT),
        ),
        (format!("msi_res_id={storage_rid}"), Ok(STORAGE_CLIENT)),
        (format!("mi_res_id={storage_rid}"), Ok(STORAGE_CLIENT)),
        (
            "client_id=00000000-0000-0000-0000-000000000000".into(),
            Err(SelectError::NotFound),
        ),
        ("client_id=".into(), Err(SelectError::NotFound)),
        (
            format!("msi_res_id={}", demo.vm_mirid()),
            Err(SelectError::NotFound),
        ),
        (
            format!("client_id={STORAGE_CLIENT}&object_id=x"),
            Err(SelectError::TooManySelectors),
        ),
        (
            "msi_res_id=a&mi_res_id=a".into(),
            Err(SelectError::TooManySelectors),
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(pick(&demo, &raw), want.map(str::to_string), "{raw}");
    }
}

#[test]
fn without_system_identity() {
    let mut config = EmulatorConfig::demo();
    config.system_identity = None;
    assert_eq!(pick(&config, ""), Err(SelectError::Ambiguous));
    config.user_assigned.truncate(1);
    assert_eq!(pick(&config, "").unwrap(), STORAGE_CLIENT);
    config.user_assigned.clear();
    assert_eq!(pick(&config, ""), Err(SelectError::NotFound));
}

#[test]
fn system_mirid_is_the_vm() {
    let demo = EmulatorConfig::demo();
    let chosen = choose(&demo, None).unwrap();
    assert_eq!(
        chosen.mirid,
        "/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourcegroups/gatehouse-demo/providers/Microsoft.Compute/virtualMachines/demo-vm"
    );
    let chosen = choose(&demo, Some(Selector::Client(VAULT_CLIENT))).unwrap();
    assert!(chosen
        .mirid
        .ends_with("/userAssignedIdentities/vault-reader"));
}
