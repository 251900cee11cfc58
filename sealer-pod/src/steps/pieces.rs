//! `pieces.json`: the pieces a sector holds, in the order they were written.

use std::path::Path;

use filecoin_proofs::pieces::{sum_piece_bytes_with_alignment, zero_padding};
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
    /// Where the data came from (file path or URL).
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pieces {
    /// Committed capacity: no deal data, the sector is all zeros.
    pub cc: bool,
    /// The deal pieces, as the chain's activation manifest lists them. Zero filler pieces
    /// that complete the sector are not listed; `infos` derives them.
    pub pieces: Vec<PieceRecord>,
}

impl Pieces {
    pub fn read(path: &Path) -> StepResult<Self> {
        layout::read_json(path, "piece list", "add-piece")
    }

    /// The pieces as the proofs library needs them: the deal pieces followed by zero filler
    /// pieces up to `sector_bytes` (smallest first, so each starts aligned to its size, as
    /// Lotus' fillersFromRem does).
    pub fn infos(&self, path: &Path, sector_bytes: u64) -> StepResult<Vec<PieceInfo>> {
        let mut infos = self.deal_infos(path)?;
        let sizes: Vec<UnpaddedBytesAmount> = infos.iter().map(|i| i.size).collect();
        let used = u64::from(PaddedBytesAmount::from(sum_piece_bytes_with_alignment(&sizes)));
        let remaining = sector_bytes.checked_sub(used).ok_or_else(|| StepError::CorruptInput {
            what: "piece list",
            path: path.to_path_buf(),
            reason: format!("pieces take {used} bytes of a {sector_bytes}-byte sector"),
        })?;
        for bit in 0..64 {
            let filler = 1u64 << bit;
            if remaining & filler != 0 {
                let info = zero_padding(UnpaddedBytesAmount::from(PaddedBytesAmount(filler)))
                    .map_err(|e| StepError::proofs("computing a filler piece", e))?;
                infos.push(info);
            }
        }
        Ok(infos)
    }

    fn deal_infos(&self, path: &Path) -> StepResult<Vec<PieceInfo>> {
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
