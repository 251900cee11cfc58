//! c1: the vanilla PoRep proofs for the chain's seed, written to `c1.json`.

use filecoin_proofs_api::seal::seal_commit_phase1;
use serde_json::{Value, json};

use super::pc1::Pc1Record;
use super::pc2::Pc2Record;
use super::pieces::Pieces;
use crate::error::{StepError, StepResult};
use crate::fault;
use crate::fsutil;
use crate::layout::{self, SectorDir};
use crate::sector::SectorIdentity;

pub fn run(id: &SectorIdentity, dir: &SectorDir, ticket: [u8; 32], seed: [u8; 32]) -> StepResult<Value> {
    Pc1Record::read(dir)?.check_ticket(&ticket, &dir.pc1())?;
    let pc2 = Pc2Record::read(dir)?;
    let pre_commit = pc2.output(id, dir)?;
    let pieces = Pieces::read(&dir.pieces())?;
    let infos = pieces.infos(&dir.pieces(), id.size.0)?;
    layout::require_sector_file(&dir.sealed(), "sealed replica", "pc2", id.size.0)?;
    layout::require(&dir.cache(), "sector cache", "pc1")?;
    fsutil::remove_file_if_exists(&dir.c1())?;

    let out = seal_commit_phase1(
        dir.cache(),
        dir.sealed(),
        id.prover_id,
        id.sector_id,
        ticket,
        seed,
        pre_commit,
        &infos,
    )
    .map_err(|e| StepError::proofs("C1", e))?;
    fault::point("c1", "after-proof");
    layout::write_json(&dir.c1(), &out)?;
    Ok(json!({ "comm_r": pc2.comm_r, "comm_d": pc2.comm_d }))
}
