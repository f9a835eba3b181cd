//! Socket-level kernel interfaces: the NAT original destination and sock_diag lookups.

pub mod orig_dst;
pub mod sock_diag;
