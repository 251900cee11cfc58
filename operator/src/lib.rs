//! The sealing operator library: CRD types and the Kubernetes-free sealing core.
