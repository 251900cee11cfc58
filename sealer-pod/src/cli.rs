//! Command-line interface: one subcommand per step, plus `params`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::error::{StepError, StepResult};
use crate::layout::SectorDir;
use crate::output::DEFAULT_RESULT_PATH;
use crate::params::catalog::{self, ALL_KINDS};
use crate::params::check::{self, Depth, FileStatus};
use crate::params::{ParamKind, ParamSet, fetch, generate, manifest};
use crate::sector::{SectorIdentity, SectorSize, parse_hex32, parse_miner};
use crate::steps::{self, replicas};

#[derive(Debug, Parser)]
#[command(name = "sealer-pod", version, about = "Runs one Filecoin sealing step per invocation")]
pub struct Cli {
    /// Where the result JSON goes (the pod's termination message path).
    #[arg(long, global = true, default_value = DEFAULT_RESULT_PATH)]
    pub result_path: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct SectorArgs {
    /// The sector's scratch directory (layout in README.md).
    #[arg(long)]
    pub sector_dir: PathBuf,
    /// Miner ID address, e.g. t01000; prover_id is derived from it.
    #[arg(long)]
    pub miner: String,
    #[arg(long)]
    pub sector_number: u64,
    /// 2KiB, 8MiB, 512MiB, 32GiB or 64GiB.
    #[arg(long)]
    pub sector_size: SectorSize,
    /// Seal proof: on-chain id (5) or name (StackedDrg2KiBV1_1); default the V1_1 proof for the size.
    #[arg(long)]
    pub seal_proof: Option<String>,
}

impl SectorArgs {
    fn open(&self) -> StepResult<(SectorIdentity, SectorDir)> {
        let id = SectorIdentity::new(&self.miner, self.sector_number, self.sector_size, self.seal_proof.as_deref())?;
        let dir = SectorDir::open(&self.sector_dir)?;
        Ok((id, dir))
    }
}

#[derive(Debug, Args)]
pub struct ReplicaArgs {
    #[arg(long)]
    pub miner: String,
    #[arg(long)]
    pub sector_size: SectorSize,
    /// JSON list of {sector_number, comm_r, sealed_path, cache_path}.
    #[arg(long)]
    pub sectors_file: Option<PathBuf>,
    /// NUMBER,COMMR,SEALED_PATH,CACHE_PATH (repeatable).
    #[arg(long = "sector")]
    pub sectors: Vec<String>,
}

impl ReplicaArgs {
    fn replicas(&self) -> StepResult<Vec<replicas::Replica>> {
        let mut specs = match &self.sectors_file {
            Some(path) => replicas::read_file(path)?,
            None => Vec::new(),
        };
        for s in &self.sectors {
            specs.push(replicas::parse_arg(s)?);
        }
        replicas::resolve(specs)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the sector's data from piece files/URLs, or zeros for committed capacity.
    AddPiece {
        #[command(flatten)]
        sector: SectorArgs,
        /// A piece: file path, file:// or http(s):// URL (repeatable, in order). None = CC.
        #[arg(long = "piece")]
        pieces: Vec<String>,
        /// Expected piece CID for each --piece, checked after reading the data.
        #[arg(long = "piece-cid")]
        piece_cids: Vec<String>,
        /// Stage the data for a snap upgrade (into update/) instead of a new sector.
        #[arg(long)]
        update: bool,
    },
    /// Build tree-d and check CommD against the piece list.
    TreeD {
        #[command(flatten)]
        sector: SectorArgs,
        /// Build it over the data staged for a snap upgrade (update/).
        #[arg(long)]
        update: bool,
    },
    /// PreCommit phase 1 (SDR).
    Pc1 {
        #[command(flatten)]
        sector: SectorArgs,
        /// Seal ticket, 32 bytes hex.
        #[arg(long)]
        ticket: String,
    },
    /// PreCommit phase 2 (tree-c, tree-r-last, the replica).
    Pc2 {
        #[command(flatten)]
        sector: SectorArgs,
    },
    /// Commit phase 1 (vanilla proofs for the seed).
    C1 {
        #[command(flatten)]
        sector: SectorArgs,
        #[arg(long)]
        ticket: String,
        /// Interactive seal seed, 32 bytes hex.
        #[arg(long)]
        seed: String,
    },
    /// Commit phase 2 (the SNARK).
    C2 {
        #[command(flatten)]
        sector: SectorArgs,
    },
    /// Window PoSt over a set of sectors; bad sectors are reported as faulty and skipped.
    WindowPost {
        #[command(flatten)]
        replicas: ReplicaArgs,
        /// Chain randomness, 32 bytes hex (masked here as Lotus does).
        #[arg(long)]
        randomness: String,
    },
    /// Find sectors with missing or corrupt files (like `venus-sealer proving check`).
    ProvingCheck {
        #[command(flatten)]
        replicas: ReplicaArgs,
        /// Challenge randomness, 32 bytes hex; random when omitted.
        #[arg(long)]
        randomness: Option<String>,
    },
    /// Encode the data staged by `add-piece --update` into the sealed sector (SnapDeals).
    SnapEncode {
        #[command(flatten)]
        sector: SectorArgs,
    },
    /// Prove the snap update.
    SnapProve {
        #[command(flatten)]
        sector: SectorArgs,
    },
    /// Check a (rebuilt) replica: its CommR, and a vanilla PoSt over its files.
    CheckSealed {
        #[command(flatten)]
        sector: SectorArgs,
        /// The CommR the replica must have (the one on chain).
        #[arg(long)]
        comm_r: Option<String>,
    },
    /// Copy the sealed replica, cache and records to long-term storage.
    Persist {
        #[command(flatten)]
        sector: SectorArgs,
        /// The sector's directory in long-term storage (replaced as a whole).
        #[arg(long)]
        store_dir: PathBuf,
    },
    /// Recover unpadded data from the replica.
    Unseal {
        #[command(flatten)]
        sector: SectorArgs,
        #[arg(long)]
        ticket: String,
        /// Unpadded byte offset.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Unpadded byte count (default: to the end of the sector).
        #[arg(long)]
        length: Option<u64>,
        #[arg(long)]
        output: PathBuf,
    },
    /// Delete a sector's directories (with their temporaries), after an abort or deletion.
    Remove {
        /// A sector directory to remove (repeatable).
        #[arg(long = "dir", required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Proof parameters: check, generate (test sizes), fetch (published sizes).
    #[command(subcommand)]
    Params(ParamsCommand),
}

#[derive(Debug, Args)]
pub struct ParamSelection {
    #[arg(long)]
    pub sector_size: SectorSize,
    /// Parameter sets: porep, window-post, winning-post, snap, aggregate (repeatable; default all).
    #[arg(long = "kind")]
    pub kinds: Vec<ParamKind>,
    /// Select the sets a step needs instead (c2, window-post, snap-prove).
    #[arg(long, conflicts_with = "kinds")]
    pub step: Option<String>,
}

impl ParamSelection {
    fn sets(&self) -> StepResult<Vec<ParamSet>> {
        let kinds: Vec<ParamKind> = match &self.step {
            Some(step) => ParamKind::for_step(step).into_iter().collect(),
            None if self.kinds.is_empty() => ALL_KINDS.to_vec(),
            None => self.kinds.clone(),
        };
        kinds.into_iter().map(|k| ParamSet::new(k, self.sector_size)).collect()
    }
}

#[derive(Debug, Subcommand)]
pub enum ParamsCommand {
    /// Report which files are needed and whether they are present and intact (digests).
    Check {
        #[command(flatten)]
        select: ParamSelection,
    },
    /// Generate random parameters for what is missing (test sector sizes only).
    Generate {
        #[command(flatten)]
        select: ParamSelection,
    },
    /// Download published parameters and verify their digests.
    Fetch {
        #[command(flatten)]
        select: ParamSelection,
        /// Gateway base URL; each file is fetched from BASE/CID.
        #[arg(long, env = "IPFS_GATEWAY", default_value = fetch::DEFAULT_BASE_URL)]
        base_url: String,
        /// Use this parameters.json instead of the one built in.
        #[arg(long)]
        parameters_json: Option<PathBuf>,
    },
    /// Internal: generate one set into the library's configured cache (run by `generate`).
    #[command(hide = true)]
    GenerateIntoCache {
        #[arg(long)]
        kind: ParamKind,
        #[arg(long)]
        sector_size: SectorSize,
    },
}

impl Command {
    /// The step name used in the result JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Command::AddPiece { .. } => "add-piece",
            Command::TreeD { .. } => "tree-d",
            Command::Pc1 { .. } => "pc1",
            Command::Pc2 { .. } => "pc2",
            Command::C1 { .. } => "c1",
            Command::C2 { .. } => "c2",
            Command::WindowPost { .. } => "window-post",
            Command::ProvingCheck { .. } => "proving-check",
            Command::SnapEncode { .. } => "snap-encode",
            Command::SnapProve { .. } => "snap-prove",
            Command::Unseal { .. } => "unseal",
            Command::CheckSealed { .. } => "check-sealed",
            Command::Persist { .. } => "persist",
            Command::Remove { .. } => "remove",
            Command::Params(ParamsCommand::Check { .. }) => "params-check",
            Command::Params(ParamsCommand::Generate { .. }) => "params-generate",
            Command::Params(ParamsCommand::Fetch { .. }) => "params-fetch",
            Command::Params(ParamsCommand::GenerateIntoCache { .. }) => "params-generate-into-cache",
        }
    }

    pub fn run(&self) -> StepResult<Value> {
        match self {
            Command::AddPiece {
                sector,
                pieces,
                piece_cids,
                update,
            } => {
                let id = SectorIdentity::new(&sector.miner, sector.sector_number, sector.sector_size, sector.seal_proof.as_deref())?;
                let dir = SectorDir::open_or_create(&sector.sector_dir)?;
                let args = steps::add_piece::AddPieceArgs {
                    sources: pieces.clone(),
                    expected_cids: piece_cids.clone(),
                    for_update: *update,
                };
                steps::add_piece::run(&id, &dir, &args)
            }
            Command::TreeD { sector, update } => {
                let (id, dir) = sector.open()?;
                let dir = if *update { dir.update() } else { dir };
                steps::tree_d::run(&id, &dir)
            }
            Command::Pc1 { sector, ticket } => {
                let ticket = parse_hex32("ticket", ticket)?;
                let (id, dir) = sector.open()?;
                steps::pc1::run(&id, &dir, ticket)
            }
            Command::Pc2 { sector } => {
                let (id, dir) = sector.open()?;
                steps::pc2::run(&id, &dir)
            }
            Command::C1 { sector, ticket, seed } => {
                let ticket = parse_hex32("ticket", ticket)?;
                let seed = parse_hex32("seed", seed)?;
                let (id, dir) = sector.open()?;
                steps::c1::run(&id, &dir, ticket, seed)
            }
            Command::C2 { sector } => {
                let (id, dir) = sector.open()?;
                steps::c2::run(&id, &dir)
            }
            Command::WindowPost { replicas, randomness } => {
                let randomness = parse_hex32("randomness", randomness)?;
                let (_, prover_id) = parse_miner(&replicas.miner)?;
                steps::window_post::run(replicas.sector_size, prover_id, randomness, &replicas.replicas()?)
            }
            Command::ProvingCheck { replicas, randomness } => {
                let randomness = randomness.as_deref().map(|r| parse_hex32("randomness", r)).transpose()?;
                let (_, prover_id) = parse_miner(&replicas.miner)?;
                steps::proving_check::run(replicas.sector_size, prover_id, randomness, &replicas.replicas()?)
            }
            Command::SnapEncode { sector } => {
                let (id, dir) = sector.open()?;
                steps::snap::encode(&id, &dir)
            }
            Command::SnapProve { sector } => {
                let (id, dir) = sector.open()?;
                steps::snap::prove(&id, &dir)
            }
            Command::Unseal {
                sector,
                ticket,
                offset,
                length,
                output,
            } => {
                let ticket = parse_hex32("ticket", ticket)?;
                let (id, dir) = sector.open()?;
                steps::unseal::run(&id, &dir, ticket, *offset, *length, output)
            }
            Command::CheckSealed { sector, comm_r } => {
                let (id, dir) = sector.open()?;
                steps::check_sealed::run(&id, &dir, comm_r.as_deref())
            }
            Command::Persist { sector, store_dir } => {
                let (id, dir) = sector.open()?;
                steps::persist::run(&id, &dir, store_dir)
            }
            Command::Remove { dirs } => steps::remove::run(dirs),
            Command::Params(cmd) => run_params(cmd),
        }
    }
}

fn run_params(cmd: &ParamsCommand) -> StepResult<Value> {
    let cache = catalog::cache_dir();
    match cmd {
        ParamsCommand::Check { select } => {
            let reports = check::check_sets(&cache, &select.sets()?, Depth::Digest)?;
            for r in &reports {
                eprintln!("{:<16} {:<13} {:<10} {}", r.status.as_str(), r.kind, format!("{:?}", r.origin).to_lowercase(), r.name);
            }
            let bad: Vec<String> = reports
                .iter()
                .filter(|r| r.status != FileStatus::Ok)
                .map(|r| format!("{} ({})", r.name, r.status.as_str()))
                .collect();
            if !bad.is_empty() {
                return Err(StepError::MissingParameters {
                    purpose: format!("{}", select.sector_size),
                    cache,
                    files: bad.join(", "),
                });
            }
            Ok(json!({ "cache": cache, "files": reports }))
        }
        ParamsCommand::Generate { select } => {
            let outcomes = generate::ensure(&cache, &select.sets()?)?;
            Ok(json!({ "cache": cache, "sets": outcomes }))
        }
        ParamsCommand::Fetch {
            select,
            base_url,
            parameters_json,
        } => {
            let manifest = match parameters_json {
                Some(path) => manifest::read_official(path)?,
                None => manifest::official(),
            };
            let fetched = fetch::fetch(&cache, &select.sets()?, base_url, &manifest)?;
            Ok(json!({ "cache": cache, "files": fetched }))
        }
        ParamsCommand::GenerateIntoCache { kind, sector_size } => {
            generate::generate_into_library_cache(*kind, *sector_size)
                .map_err(|e| StepError::proofs("generating parameters", e))?;
            Ok(json!({ "kind": kind.to_string(), "sector_size": sector_size.0 }))
        }
    }
}
