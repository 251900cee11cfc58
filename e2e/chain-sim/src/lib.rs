//! A Filecoin chain simulator for tests: it serves the Lotus v1 JSON-RPC methods a sealer needs
//! with Lotus' JSON shapes, advances epochs on a timer, executes and finds messages with Lotus'
//! timing, draws randomness as the actors do, runs the miner actor's sealing and proving rules
//! with real proof verification, charges gas from the FVM price list, takes replacements by fee,
//! and lets tests inject failures, delays, drops, base-fee spikes and null rounds.

pub mod actor;
pub mod chain;
pub mod config;
pub mod control;
pub mod gas;
pub mod mpool;
pub mod randomness;
pub mod rpc;
pub mod sim;
pub mod verifier;
pub mod wallet;

pub use config::SimConfig;
pub use control::SimControl;
pub use sim::RunningSim;
pub use verifier::{FilecoinProofs, ProofVerifier};
