//! The sealing operator: CRD types and the Kubernetes-free sealing core.

pub mod core;
pub mod crd;
