use super::{is_guid, ConfigError, EmulatorConfig};

const EXAMPLE: &str = include_str!("../../../../examples/emulator.toml");

#[test]
fn example_file_equals_demo() {
    assert_eq!(
        EmulatorConfig::from_toml(EXAMPLE).unwrap(),
        EmulatorConfig::demo()
    );
}

#[test]
fn demo_is_valid() {
    EmulatorConfig::demo().validate().unwrap();
}

#[test]
fn minimal_config_gets_defaults() {
    let text = r#"
tenant_id = "b5a9c1d2-3e4f-4a6b-8c7d-9e0f1a2b3c4d"
subscription_id = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
resource_group = "rg"
[vm]
name = "vm"
location = "westus"
vm_id = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
vm_size = "Standard_B1s"
"#;
    let config = EmulatorConfig::from_toml(text).unwrap();
    assert_eq!(config.token_lifetime_secs, 86_399);
    assert_eq!(config.vm.os_type, "Linux");
    assert!(config.system_identity.is_none());
    assert!(config.user_assigned.is_empty());
}

#[test]
fn parse_errors_name_the_place() {
    let err = EmulatorConfig::from_toml("tenant_id = \"x\"\nbogus = 1\n").unwrap_err();
    let ConfigError::Parse(message) = err else {
        panic!("expected parse error, got {err:?}");
    };
    assert!(message.contains("line"), "{message}");
}

#[test]
fn validation_reports_every_problem() {
    let mut config = EmulatorConfig::demo();
    config.tenant_id = "nope".into();
    config.token_lifetime_secs = 0;
    let dup = config.user_assigned[0].clone();
    config.user_assigned.push(dup);
    let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
        panic!("expected invalid");
    };
    let text = problems.join("\n");
    for needle in [
        "tenant_id `nope`",
        "token_lifetime_secs",
        "name `storage-writer` is repeated",
        "client_id",
        "object_id",
        "resource_id",
    ] {
        assert!(text.contains(needle), "missing {needle} in {text}");
    }
}

#[test]
fn guid_shapes() {
    let cases = [
        ("0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607", true),
        ("0D4F5E6A-7B8C-4D9E-A0F1-B2C3D4E5F607", true),
        ("0d4f5e6a7b8c4d9ea0f1b2c3d4e5f607", false),
        ("0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f60g", false),
        ("", false),
    ];
    for (value, want) in cases {
        assert_eq!(is_guid(value), want, "{value}");
    }
}
