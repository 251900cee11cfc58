//! `pieces.json`: the pieces a sector holds, in the order they were written.

use std::path::Path;

use filecoin_proofs_api::{PaddedBytesAmount, PieceInfo, UnpaddedBytesAmount};
use serde::{Deserialize, Serialize};

use crate::error::{StepError, StepResult};
use crate::layout;
use crate::sector::{comm_d_cid, parse_comm_d};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PieceRecord {
    /// Piece CID (CommP), `baga…`.
    pub cid: String,
    /// Padded piece size in bytes, as on chain.
    pub size: u64,
    /// Where the data came from (file path or URL); `zero` for committed capacity.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pieces {
    /// Committed capacity: one zero piece filling the sector, no deal data.
    pub cc: bool,
    pub pieces: Vec<PieceRecord>,
}

impl Pieces {
    pub fn read(path: &Path) -> StepResult<Self> {
        layout::read_json(path, "piece list", "add-piece")
    }

    pub fn infos(&self, path: &Path) -> StepResult<Vec<PieceInfo>> {
        self.pieces
            .iter()
            .map(|p| {
                let commitment = parse_comm_d("piece CID", &p.cid).map_err(|e| StepError::CorruptInput {
                    what: "piece list",
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
                Ok(PieceInfo {
                    commitment,
                    size: UnpaddedBytesAmount::from(PaddedBytesAmount(p.size)),
                })
            })
            .collect()
    }

    pub fn record(info: &PieceInfo, source: String) -> StepResult<PieceRecord> {
        Ok(PieceRecord {
            cid: comm_d_cid(&info.commitment)?,
            size: u64::from(PaddedBytesAmount::from(info.size)),
            source,
        })
    }
}
