//! The sealer pod: one Filecoin sealing step per process, on `filecoin-proofs-api`.

pub mod cli;
pub mod error;
pub mod fault;
pub mod fsutil;
pub mod layout;
pub mod output;
pub mod params;
pub mod sector;
pub mod steps;
