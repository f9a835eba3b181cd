//! `/proc` access. Per-process reads go through [`ProcDir`], a directory fd opened once.

pub mod cgroup;
mod dir;
pub mod scan;
pub mod status;

pub use dir::ProcDir;
