//! Groth parameters and verifying keys: which files a step needs, whether they are in the cache
//! and intact, and making them present (generate for test sizes, fetch for production sizes).

pub mod catalog;
pub mod check;
pub mod fetch;
pub mod generate;
pub mod manifest;

pub use catalog::{ParamKind, ParamSet};
