//! Kubernetes-free pieces of the chain bridge: a typed client for the Lotus/Venus v1 JSON-RPC
//! methods a sealer needs, the Lotus JSON shapes, miner-actor (builtin-actors v18) message
//! parameters in their exact CBOR encoding, chain randomness, deadline math, and the pure
//! decision logic (message idempotency keys, exit-code classification, batching, ticket and seed
//! epochs) the controller runs on top of them.

pub mod address;
pub mod batching;
pub mod client;
pub mod deadline;
pub mod exit_code;
pub mod fees;
pub mod lotus_json;
pub mod message;
pub mod methods;
pub mod miner;
pub mod msg_uuid;
pub mod params;
pub mod policy;
#[cfg(feature = "proofs")]
pub mod proofs;
pub mod randomness;
pub mod tipset;
pub mod token;

pub use address::ChainAddress;
pub use client::{ClientError, LotusClient};
pub use deadline::DeadlineInfo;
pub use token::ApiToken;

/// A chain epoch, as the actors count them.
pub type ChainEpoch = fvm_shared::clock::ChainEpoch;
