//! Which cloud's metadata service a gate speaks. Chosen explicitly
//! (`--cloud`), never guessed; every identity in a policy belongs to one.

use std::fmt;
use std::str::FromStr;

/// A metadata dialect: Azure IMDS, AWS EC2 IMDSv2, Google's metadata server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Cloud {
    #[default]
    Azure,
    Aws,
    Gcp,
}

impl Cloud {
    pub const ALL: [Cloud; 3] = [Cloud::Azure, Cloud::Aws, Cloud::Gcp];

    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Azure => "azure",
            Cloud::Aws => "aws",
            Cloud::Gcp => "gcp",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCloud(pub String);

impl fmt::Display for UnknownCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown cloud `{}`: expected `azure`, `aws` or `gcp`",
            self.0
        )
    }
}

impl std::error::Error for UnknownCloud {}

impl FromStr for Cloud {
    type Err = UnknownCloud;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cloud::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCloud(s.to_owned()))
    }
}
