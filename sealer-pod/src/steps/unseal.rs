//! unseal: recovers unpadded sector data from the replica (for retrievals, or a lost `unsealed`).

use std::path::Path;

use filecoin_proofs_api::seal::get_unsealed_range;
use filecoin_proofs_api::{UnpaddedByteIndex, UnpaddedBytesAmount};
use serde_json::{Value, json};

use super::pc1::Pc1Record;
use super::pc2::Pc2Record;
use crate::error::{StepError, StepResult};
use crate::fsutil;
use crate::layout::{self, SectorDir};
use crate::sector::SectorIdentity;

pub fn run(
    id: &SectorIdentity,
    dir: &SectorDir,
    ticket: [u8; 32],
    offset: u64,
    length: Option<u64>,
    output: &Path,
) -> StepResult<Value> {
    Pc1Record::read(dir)?.check_ticket(&ticket, &dir.pc1())?;
    let pc2 = Pc2Record::read(dir)?.output(id, dir)?;
    layout::require_sector_file(&dir.sealed(), "sealed replica", "pc2", id.size.0)?;
    let capacity = u64::from(UnpaddedBytesAmount::from(filecoin_proofs_api::PaddedBytesAmount(id.size.0)));
    let length = length.unwrap_or(capacity.saturating_sub(offset));
    if offset.checked_add(length).is_none_or(|end| end > capacity) || length == 0 {
        return Err(StepError::invalid(
            "range",
            format!("offset {offset} + length {length} is outside the sector's {capacity} unpadded bytes"),
        ));
    }
    let tmp = fsutil::tmp_path(output);
    let written = get_unsealed_range(
        id.seal_proof,
        dir.cache(),
        dir.sealed(),
        tmp.clone(),
        id.prover_id,
        id.sector_id,
        pc2.comm_d,
        ticket,
        UnpaddedByteIndex(offset),
        UnpaddedBytesAmount(length),
    )
    .map_err(|e| StepError::proofs("unseal", e))?;
    fsutil::rename(&tmp, output)?;
    Ok(json!({ "output": output.display().to_string(), "bytes": u64::from(written) }))
}
