//! The api-versions IMDS accepts, and the bodies that name them.

/// Real IMDS instance api-versions, oldest first; the newest is last.
pub const API_VERSIONS: &[&str] = &[
    "2017-03-01",
    "2017-04-02",
    "2017-08-01",
    "2017-10-01",
    "2017-12-01",
    "2018-02-01",
    "2018-04-02",
    "2018-10-01",
    "2019-02-01",
    "2019-03-11",
    "2019-04-30",
    "2019-06-01",
    "2019-06-04",
    "2019-08-01",
    "2019-08-15",
    "2019-11-01",
    "2020-06-01",
    "2020-07-15",
    "2020-09-01",
    "2020-10-01",
    "2020-12-01",
    "2021-01-01",
    "2021-02-01",
    "2021-03-01",
    "2021-05-01",
    "2021-10-01",
    "2021-11-01",
    "2021-11-15",
    "2021-12-13",
    "2022-02-01",
    "2022-03-01",
    "2022-05-01",
    "2022-07-01",
    "2022-08-01",
    "2022-09-01",
    "2023-07-01",
    "2023-11-15",
    "2024-03-15",
    "2024-07-17",
    "2025-04-07",
];

/// Scheduled Events has its own version line.
pub(crate) const SCHEDULED_EVENTS_VERSIONS: &[&str] = &[
    "2017-03-01",
    "2017-08-01",
    "2017-11-01",
    "2019-01-01",
    "2019-08-01",
    "2020-07-01",
];

/// Oldest version the identity endpoint accepts.
pub(crate) const MIN_IDENTITY_VERSION: &str = "2018-02-01";

const API_VERSION_ERROR: &str = "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds";

/// `{"apiVersions":[...]}` for `/metadata/versions`.
pub(crate) fn list_body() -> serde_json::Value {
    serde_json::json!({ "apiVersions": API_VERSIONS })
}

/// The 400 body for a missing or unknown api-version: the three newest of `known`.
pub(crate) fn invalid_body(known: &[&str]) -> serde_json::Value {
    let newest: Vec<&str> = known.iter().rev().take(3).copied().collect();
    serde_json::json!({ "error": API_VERSION_ERROR, "newest-versions": newest })
}

/// Whether `version` is a `YYYY-MM-DD` date no older than the identity minimum.
/// (Identity accepts any such date; ISO dates order lexically.)
pub(crate) fn identity_version_ok(version: &str) -> bool {
    let shaped = version.len() == 10
        && version.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shaped && version >= MIN_IDENTITY_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_versions() {
        let cases = [
            ("2018-02-01", true),
            ("2019-08-01", true),
            ("2025-04-07", true),
            ("2017-12-01", false),
            ("2019-8-01", false),
            ("latest", false),
            ("", false),
        ];
        for (v, want) in cases {
            assert_eq!(identity_version_ok(v), want, "{v}");
        }
    }

    #[test]
    fn newest_first() {
        assert_eq!(API_VERSIONS.last(), Some(&"2025-04-07"));
        assert_eq!(
            invalid_body(API_VERSIONS)["newest-versions"][0],
            "2025-04-07"
        );
        let mut sorted = API_VERSIONS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, API_VERSIONS);
    }
}
