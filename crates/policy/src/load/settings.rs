//! Top-level settings (`[modes]`, `trusted_services`,
//! `trusted_services_approve`) and identity tags.

use std::collections::BTreeMap;

use toml::de::DeValue;

use crate::mode::{Family, Mode, Modes};
use crate::policy::Settings;
use crate::trusted::TrustedConfig;

use super::fields::{Fields, Sink};

pub(super) fn load(sink: &mut Sink<'_>, root: &Fields<'_, '_>) -> Settings {
    let mut modes = Modes::default();
    if let Some((table, _)) = root.opt_table(sink, "modes") {
        for (key, value) in table.iter() {
            let k: &str = key.get_ref();
            let Some(family) = Family::ALL.into_iter().find(|f| f.key() == k) else {
                let keys = Family::ALL.map(|f| format!("`{}`", f.key())).join(", ");
                sink.error(
                    key.span(),
                    format!("unknown endpoint family `{k}` in `modes`"),
                    Some(format!("expected one of {keys}")),
                );
                continue;
            };
            match value.get_ref() {
                DeValue::String(s) => match Mode::parse(s) {
                    Some(m) => modes.set(family, m),
                    None => sink.error(
                        value.span(),
                        format!("unknown mode `{s}`"),
                        Some("expected `enforce`, `audit` or `off`".into()),
                    ),
                },
                other => sink.error(
                    value.span(),
                    format!("`{k}` must be a string, found {}", other.type_str()),
                    None,
                ),
            }
        }
    }
    let defaults = TrustedConfig::default();
    let trusted = TrustedConfig {
        enabled: flag(sink, root, "trusted_services").unwrap_or(defaults.enabled),
        approve: flag(sink, root, "trusted_services_approve").unwrap_or(defaults.approve),
    };
    Settings {
        modes,
        trusted,
        aws_allow_imdsv1: flag(sink, root, "aws_allow_imdsv1").unwrap_or(false),
        ..Settings::default()
    }
}

fn flag(sink: &mut Sink<'_>, root: &Fields<'_, '_>, key: &str) -> Option<bool> {
    root.opt_bool(sink, key).map(|(b, _)| b)
}

/// `[identities.NAME.tags]`: string keys and values.
pub(super) fn tags(sink: &mut Sink<'_>, f: &Fields<'_, '_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some((table, _)) = f.opt_table(sink, "tags") else {
        return out;
    };
    for (key, value) in table.iter() {
        let k: &str = key.get_ref();
        match value.get_ref() {
            DeValue::String(s) => {
                out.insert(k.to_owned(), s.to_string());
            }
            other => sink.error(
                value.span(),
                format!("tag `{k}` must be a string, found {}", other.type_str()),
                None,
            ),
        }
    }
    out
}
