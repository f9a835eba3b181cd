//! The emulated VM: tenant, subscription, VM facts, managed identities and
//! seeded scheduled events, loaded from TOML.
//!
//! Schema (every key shown; keys marked optional may be left out):
//!
//! ```toml
//! tenant_id = "b5a9c1d2-..."          # GUID
//! subscription_id = "6f1c2a3b-..."    # GUID
//! resource_group = "gatehouse-demo"
//! token_lifetime_secs = 86399         # optional; 1..=604800, IMDS issues ~24 h tokens
//! extra_audiences = ["api://my-app"]  # optional; added to the built-in Azure audiences
//!
//! [vm]
//! name = "demo-vm"
//! location = "westeurope"
//! vm_id = "9a8b7c6d-..."              # GUID
//! vm_size = "Standard_D2s_v5"
//! # optional, with defaults: os_type = "Linux", zone = "", publisher = "Canonical",
//! # offer = "ubuntu-24_04-lts", sku = "server", version = "latest",
//! # private_ip = "10.0.0.4", public_ip = "", mac = "000D3A1B2C3D",
//! # az_environment = "AzurePublicCloud", tags = { key = "value" }
//!
//! [system_identity]                   # optional table: the system-assigned identity
//! object_id = "0d4f5e6a-..."
//! client_id = "1e5a6b7c-..."
//!
//! [[user_assigned]]                   # zero or more user-assigned identities
//! name = "storage-writer"
//! client_id = "2f6b7c8d-..."
//! object_id = "3a7c8d9e-..."
//! resource_id = "/subscriptions/.../userAssignedIdentities/storage-writer"
//! tags = { team = "web" }             # optional
//!
//! [[scheduled_events]]                # optional seeds for /metadata/scheduledevents
//! event_id = "602d9444-..."
//! event_type = "Reboot"               # Reboot | Redeploy | Freeze | Preempt | Terminate
//! not_before = "Mon, 19 Sep 2016 18:29:47 GMT"   # optional, default ""
//! # optional: resource_type = "VirtualMachine", resources = [] (empty: the VM name),
//! # event_status = "Scheduled", description = "", event_source = "Platform",
//! # duration_in_seconds = -1
//! ```
//!
//! Unknown keys are rejected so a typo cannot silently drop an identity.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// TOML syntax or schema error; the message carries line and column.
    #[error("cannot parse emulator config: {0}")]
    Parse(String),
    /// The TOML parsed but describes an impossible VM; every problem is listed.
    #[error("invalid emulator config: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// The whole emulated VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorConfig {
    pub tenant_id: String,
    pub subscription_id: String,
    pub resource_group: String,
    #[serde(default = "default_lifetime")]
    pub token_lifetime_secs: u64,
    #[serde(default)]
    pub extra_audiences: Vec<String>,
    pub vm: VmConfig,
    #[serde(default)]
    pub system_identity: Option<SystemIdentity>,
    #[serde(default)]
    pub user_assigned: Vec<UserAssignedIdentity>,
    #[serde(default)]
    pub scheduled_events: Vec<ScheduledEvent>,
    /// What `--cloud aws` serves (defaults: a demo instance with one role).
    #[serde(default)]
    pub aws: AwsConfig,
    /// What `--cloud gcp` serves (defaults: a demo instance with one
    /// service account).
    #[serde(default)]
    pub gcp: GcpConfig,
}

/// The emulated Compute Engine instance (`[gcp]`, every key optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcpConfig {
    pub project_id: String,
    pub numeric_project_id: u64,
    pub instance_id: u64,
    pub instance_name: String,
    pub zone: String,
    /// The instance's service accounts; the first is `default`.
    pub service_accounts: Vec<GcpServiceAccount>,
    /// How long access and ID tokens are valid (GCE: 3599 s and 3600 s;
    /// the same access token is served until less than 5 minutes are left).
    pub token_lifetime_secs: u64,
    /// `instance/attributes/`, verbatim (startup scripts often hold secrets).
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// One service account of the emulated instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpServiceAccount {
    pub email: String,
    pub scopes: Vec<String>,
}

impl Default for GcpConfig {
    fn default() -> Self {
        GcpConfig {
            project_id: "gatehouse-demo".into(),
            numeric_project_id: 123_456_789_012,
            instance_id: 4_520_031_799_277_581_759,
            instance_name: "gatehouse-demo-vm".into(),
            zone: "europe-west1-b".into(),
            service_accounts: vec![GcpServiceAccount {
                email: "app@gatehouse-demo.iam.gserviceaccount.com".into(),
                scopes: vec![
                    "https://www.googleapis.com/auth/cloud-platform".into(),
                    "https://www.googleapis.com/auth/userinfo.email".into(),
                ],
            }],
            token_lifetime_secs: 3599,
            attributes: [(
                "startup-script".to_owned(),
                "#!/bin/sh\n# demo startup script: secrets often live here\nDB_PASSWORD=demo\n"
                    .to_owned(),
            )]
            .into_iter()
            .collect(),
        }
    }
}

/// The emulated EC2 instance (`[aws]`, every key optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// The instance profile's role (one per instance, as on EC2).
    pub role: String,
    pub account_id: String,
    pub instance_id: String,
    pub region: String,
    /// `/latest/user-data`, verbatim.
    pub user_data: String,
    /// How long role credentials are valid (EC2: about 6 h; rotated when
    /// less than half is left).
    pub credential_lifetime_secs: u64,
    /// `HttpTokens=optional`: answer GETs without a session token (IMDSv1).
    pub tokens_optional: bool,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            role: "gatehouse-demo-role".into(),
            account_id: "123456789012".into(),
            instance_id: "i-0abc1234def567890".into(),
            region: "eu-west-1".into(),
            user_data: "#!/bin/sh\n# demo user data: secrets often live here\nDB_PASSWORD=demo\n"
                .into(),
            credential_lifetime_secs: 21600,
            tokens_optional: false,
        }
    }
}

/// Facts about the VM that `/metadata/instance` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    pub name: String,
    pub location: String,
    pub vm_id: String,
    pub vm_size: String,
    #[serde(default = "default_os_type")]
    pub os_type: String,
    #[serde(default)]
    pub zone: String,
    #[serde(default = "default_publisher")]
    pub publisher: String,
    #[serde(default = "default_offer")]
    pub offer: String,
    #[serde(default = "default_sku")]
    pub sku: String,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default = "default_private_ip")]
    pub private_ip: String,
    #[serde(default)]
    pub public_ip: String,
    #[serde(default = "default_mac")]
    pub mac: String,
    #[serde(default = "default_az_environment")]
    pub az_environment: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// The system-assigned identity (its resource id is the VM's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemIdentity {
    pub object_id: String,
    pub client_id: String,
}

/// A user-assigned identity attached to the VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserAssignedIdentity {
    pub name: String,
    pub client_id: String,
    pub object_id: String,
    pub resource_id: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A scheduled-maintenance event seeded into `/metadata/scheduledevents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledEvent {
    pub event_id: String,
    pub event_type: String,
    #[serde(default = "default_resource_type")]
    pub resource_type: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default = "default_event_status")]
    pub event_status: String,
    #[serde(default)]
    pub not_before: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_event_source")]
    pub event_source: String,
    #[serde(default = "default_duration")]
    pub duration_in_seconds: i64,
}

const MAX_LIFETIME_SECS: u64 = 7 * 24 * 3600;

fn default_lifetime() -> u64 {
    86_399
}
fn default_os_type() -> String {
    "Linux".into()
}
fn default_publisher() -> String {
    "Canonical".into()
}
fn default_offer() -> String {
    "ubuntu-24_04-lts".into()
}
fn default_sku() -> String {
    "server".into()
}
fn default_version() -> String {
    "latest".into()
}
fn default_private_ip() -> String {
    "10.0.0.4".into()
}
fn default_mac() -> String {
    "000D3A1B2C3D".into()
}
fn default_az_environment() -> String {
    "AzurePublicCloud".into()
}
fn default_resource_type() -> String {
    "VirtualMachine".into()
}
fn default_event_status() -> String {
    "Scheduled".into()
}
fn default_event_source() -> String {
    "Platform".into()
}
fn default_duration() -> i64 {
    -1
}

impl EmulatorConfig {
    /// Parses and validates a TOML config.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The built-in demo VM (the same as `examples/emulator.toml`).
    pub fn demo() -> Self {
        let sub = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
        let uami = |name: &str| {
            format!(
                "/subscriptions/{sub}/resourcegroups/gatehouse-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
            )
        };
        let tags = |team: &str| BTreeMap::from([("team".to_string(), team.to_string())]);
        Self {
            tenant_id: "b5a9c1d2-3e4f-4a6b-8c7d-9e0f1a2b3c4d".into(),
            subscription_id: sub.into(),
            resource_group: "gatehouse-demo".into(),
            token_lifetime_secs: default_lifetime(),
            extra_audiences: Vec::new(),
            vm: VmConfig {
                name: "demo-vm".into(),
                location: "westeurope".into(),
                vm_id: "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d".into(),
                vm_size: "Standard_D2s_v5".into(),
                os_type: default_os_type(),
                zone: String::new(),
                publisher: default_publisher(),
                offer: default_offer(),
                sku: default_sku(),
                version: default_version(),
                private_ip: default_private_ip(),
                public_ip: String::new(),
                mac: default_mac(),
                az_environment: default_az_environment(),
                tags: BTreeMap::new(),
            },
            system_identity: Some(SystemIdentity {
                object_id: "0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607".into(),
                client_id: "1e5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b708".into(),
            }),
            user_assigned: vec![
                UserAssignedIdentity {
                    name: "storage-writer".into(),
                    client_id: "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809".into(),
                    object_id: "3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a".into(),
                    resource_id: uami("storage-writer"),
                    tags: tags("web"),
                },
                UserAssignedIdentity {
                    name: "vault-reader".into(),
                    client_id: "4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb".into(),
                    object_id: "5c9eafb0-c1d2-43e4-b5a6-b7c8d9e0f10c".into(),
                    resource_id: uami("vault-reader"),
                    tags: tags("ops"),
                },
            ],
            scheduled_events: Vec::new(),
            aws: AwsConfig::default(),
            gcp: GcpConfig::default(),
        }
    }

    /// The VM's ARM resource id (also the system identity's `xms_mirid`).
    pub fn vm_resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
            self.subscription_id, self.resource_group, self.vm.name
        )
    }

    /// The VM's id as token claims spell it (`xms_mirid` of the system identity):
    /// ARM lower-cases the `resourcegroups` segment there.
    pub fn vm_mirid(&self) -> String {
        format!(
            "/subscriptions/{}/resourcegroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
            self.subscription_id, self.resource_group, self.vm.name
        )
    }

    /// Checks cross-field rules, reporting every violation at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut guid = |what: &str, value: &str| {
            if !is_guid(value) {
                problems.push(format!("{what} `{value}` is not a GUID"));
            }
        };
        guid("tenant_id", &self.tenant_id);
        guid("subscription_id", &self.subscription_id);
        guid("vm.vm_id", &self.vm.vm_id);
        if let Some(system) = &self.system_identity {
            guid("system_identity.object_id", &system.object_id);
            guid("system_identity.client_id", &system.client_id);
        }
        for ua in &self.user_assigned {
            guid(
                &format!("user_assigned `{}` client_id", ua.name),
                &ua.client_id,
            );
            guid(
                &format!("user_assigned `{}` object_id", ua.name),
                &ua.object_id,
            );
        }
        for (what, value) in [
            ("resource_group", &self.resource_group),
            ("vm.name", &self.vm.name),
            ("vm.location", &self.vm.location),
        ] {
            if value.is_empty() {
                problems.push(format!("{what} must not be empty"));
            }
        }
        if self.token_lifetime_secs == 0 || self.token_lifetime_secs > MAX_LIFETIME_SECS {
            problems.push(format!(
                "token_lifetime_secs `{}` must be between 1 and {MAX_LIFETIME_SECS}",
                self.token_lifetime_secs
            ));
        }
        let mut names = HashSet::new();
        let mut client_ids = HashSet::new();
        let mut object_ids = HashSet::new();
        let mut resource_ids = HashSet::new();
        if let Some(system) = &self.system_identity {
            client_ids.insert(system.client_id.to_ascii_lowercase());
            object_ids.insert(system.object_id.to_ascii_lowercase());
        }
        for ua in &self.user_assigned {
            if !names.insert(ua.name.clone()) {
                problems.push(format!("user_assigned name `{}` is repeated", ua.name));
            }
            if !client_ids.insert(ua.client_id.to_ascii_lowercase()) {
                problems.push(format!("client_id `{}` is used twice", ua.client_id));
            }
            if !object_ids.insert(ua.object_id.to_ascii_lowercase()) {
                problems.push(format!("object_id `{}` is used twice", ua.object_id));
            }
            if !resource_ids.insert(ua.resource_id.to_ascii_lowercase()) {
                problems.push(format!("resource_id `{}` is used twice", ua.resource_id));
            }
            if !ua
                .resource_id
                .to_ascii_lowercase()
                .starts_with("/subscriptions/")
            {
                problems.push(format!(
                    "user_assigned `{}` resource_id `{}` must start with `/subscriptions/`",
                    ua.name, ua.resource_id
                ));
            }
        }
        let mut event_ids = HashSet::new();
        for event in &self.scheduled_events {
            if !event_ids.insert(event.event_id.clone()) {
                problems.push(format!(
                    "scheduled event id `{}` is repeated",
                    event.event_id
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

/// `8-4-4-4-12` hex digits, either case.
pub(crate) fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}
