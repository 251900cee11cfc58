//! End-to-end support: the node agent that runs pods as local processes, and the harness that
//! starts a local control plane (or uses any cluster a kubeconfig names) for the e2e tests.

pub mod agent;
pub mod harness;
