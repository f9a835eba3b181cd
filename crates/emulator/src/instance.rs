//! The `/metadata/instance` document and its sub-path filter.
//!
//! Every primitive is a string and missing values are `""`, as on IMDS. Leaves
//! (strings) are served only with `format=text`; objects and arrays only as
//! JSON. IMDS documents no text form for non-leaves, so the emulator refuses it.

use serde_json::{json, Value};

use crate::config::EmulatorConfig;

#[cfg(test)]
mod tests;

/// Builds the whole document from the config (done once at start).
pub(crate) fn document(config: &EmulatorConfig) -> Value {
    let vm = &config.vm;
    let tags = vm
        .tags
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(";");
    let tags_list: Vec<Value> = vm
        .tags
        .iter()
        .map(|(k, v)| json!({ "name": k, "value": v }))
        .collect();
    let os_disk = format!("{}_OsDisk_1", vm.name);
    let os_disk_id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/disks/{os_disk}",
        config.subscription_id, config.resource_group
    );
    let public_ips: Vec<Value> = vec![json!({
        "privateIpAddress": vm.private_ip,
        "publicIpAddress": vm.public_ip,
    })];
    let storage = json!({
        "dataDisks": [],
        "imageReference": {
            "id": "",
            "offer": vm.offer,
            "publisher": vm.publisher,
            "sku": vm.sku,
            "version": vm.version
        },
        "osDisk": {
            "caching": "ReadWrite",
            "createOption": "FromImage",
            "diffDiskSettings": { "option": "" },
            "diskSizeGB": "30",
            "encryptionSettings": { "enabled": "false" },
            "image": { "uri": "" },
            "managedDisk": { "id": os_disk_id, "storageAccountType": "Premium_LRS" },
            "name": os_disk,
            "osType": vm.os_type,
            "vhd": { "uri": "" },
            "writeAcceleratorEnabled": "false"
        },
        "resourceDisk": { "size": "0" }
    });
    json!({
        "compute": {
            "azEnvironment": vm.az_environment,
            "additionalCapabilities": { "hibernationEnabled": "false" },
            "customData": "",
            "evictionPolicy": "",
            "extendedLocation": { "name": "", "type": "" },
            "host": { "id": "" },
            "hostGroup": { "id": "" },
            "isHostCompatibilityLayerVm": "false",
            "licenseType": "",
            "location": vm.location,
            "name": vm.name,
            "offer": vm.offer,
            "osProfile": {
                "adminUsername": "azureuser",
                "computerName": vm.name,
                "disablePasswordAuthentication": "true"
            },
            "osType": vm.os_type,
            "placementGroupId": "",
            "plan": { "name": "", "product": "", "publisher": "" },
            "platformFaultDomain": "0",
            "platformSubFaultDomain": "",
            "platformUpdateDomain": "0",
            "priority": "",
            "provider": "Microsoft.Compute",
            "publicKeys": [],
            "publisher": vm.publisher,
            "resourceGroupName": config.resource_group,
            "resourceId": config.vm_resource_id(),
            "securityProfile": {
                "encryptionAtHost": "false",
                "secureBootEnabled": "true",
                "securityType": "TrustedLaunch",
                "virtualTpmEnabled": "true"
            },
            "sku": vm.sku,
            "storageProfile": storage,
            "subscriptionId": config.subscription_id,
            "tags": tags,
            "tagsList": tags_list,
            "userData": "",
            "version": vm.version,
            "virtualMachineScaleSet": { "id": "" },
            "vmId": vm.vm_id,
            "vmScaleSetName": "",
            "vmSize": vm.vm_size,
            "zone": vm.zone
        },
        "network": {
            "interface": [{
                "ipv4": {
                    "ipAddress": public_ips,
                    "subnet": [{ "address": "10.0.0.0", "prefix": "24" }]
                },
                "ipv6": { "ipAddress": [] },
                "macAddress": vm.mac
            }]
        }
    })
}

/// Finds the node at `segments` (object keys, array indices).
pub(crate) fn lookup<'a>(doc: &'a Value, segments: &[&str]) -> Option<&'a Value> {
    segments.iter().try_fold(doc, |node, seg| match node {
        Value::Object(map) => map.get(*seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Splits the part of the path after `/metadata/instance`. One trailing `/`
/// is allowed; empty inner segments (`//`) are not (`None`).
pub(crate) fn segments(rest: &str) -> Option<Vec<&str>> {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts)
}
