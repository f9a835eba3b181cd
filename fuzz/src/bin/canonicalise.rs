//! `gatehouse_imds::canonicalise(path, query)`: the first line of the input
//! is the path, the rest (if any) the query.

fn target(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let (path, query) = match text.split_once('\n') {
        Some((p, q)) => (p, Some(q)),
        None => (text.as_ref(), None),
    };
    match gatehouse_imds::canonicalise(path, query) {
        Ok(c) => format!("ok:{}", format!("{:?}", c.endpoint).split(['(', '{', ' ']).next().unwrap_or("")),
        Err(e) => format!("err:{}", e.to_string().split('`').next().unwrap_or("")),
    }
}

const DICT: &[&str] = &[
    "/metadata/identity/oauth2/token", "/metadata/instance", "/metadata/scheduledevents", "/metadata/versions",
    "/metadata/attested/document", "/metadata/identity/info", "api-version=2018-02-01", "resource=https://storage.azure.com",
    "client_id=", "object_id=", "msi_res_id=", "&", "=", "%2F", "%00", "%", "/", "//", "..", "?", "#", "\n",
];

fn main() {
    std::process::exit(gatehouse_fuzz::run("canonicalise", target, DICT, gatehouse_fuzz::seconds_arg()));
}
