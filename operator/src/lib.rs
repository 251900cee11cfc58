//! The sealing operator: CRD types, the Kubernetes-free sealing core, and the controllers that
//! connect them to the cluster.

pub mod config;
pub mod core;
pub mod controllers;
pub mod crd;
pub mod metrics;
pub mod pods;
