//! add-piece: writes the sector's fr32-padded data file and its piece list, from piece files,
//! URLs, or nothing (committed capacity).

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use filecoin_proofs_api::seal::{add_piece, compute_comm_d};
use filecoin_proofs_api::{PaddedBytesAmount, PieceInfo, UnpaddedBytesAmount};
use serde_json::{Value, json};

use super::pieces::{PieceRecord, Pieces};
use crate::error::{StepError, StepResult};
use crate::fault;
use crate::fsutil;
use crate::layout::{self, SectorDir};
use crate::sector::{SectorIdentity, comm_d_cid, parse_comm_d};

pub struct AddPieceArgs {
    /// Files or http(s) URLs, written in this order.
    pub sources: Vec<String>,
    /// Expected piece CIDs, one per source when given.
    pub expected_cids: Vec<String>,
    /// Write into `update/` (new data for a snap upgrade) instead of the sector's own data.
    pub for_update: bool,
}

/// Smallest padded piece is 128 bytes (127 unpadded).
const MIN_UNPADDED_PIECE: u64 = 127;

pub fn run(id: &SectorIdentity, dir: &SectorDir, args: &AddPieceArgs) -> StepResult<Value> {
    if !args.expected_cids.is_empty() && args.expected_cids.len() != args.sources.len() {
        return Err(StepError::invalid(
            "piece CIDs",
            format!("{} --piece-cid given for {} --piece; give one per piece or none", args.expected_cids.len(), args.sources.len()),
        ));
    }
    let expected: Vec<_> = args
        .expected_cids
        .iter()
        .map(|c| parse_comm_d("piece CID", c))
        .collect::<StepResult<_>>()?;

    let target_dir = if args.for_update { dir.update() } else { dir.clone() };
    target_dir.ensure_exists()?;
    let sector_bytes = id.size.0;
    let unsealed = target_dir.unsealed();
    let tmp = fsutil::tmp_path(&unsealed);
    let mut file = fsutil::create_zeroed(&tmp, 0)?;

    let pieces = if args.sources.is_empty() {
        Pieces {
            cc: true,
            pieces: Vec::new(),
        }
    } else {
        let mut infos: Vec<PieceInfo> = Vec::new();
        let mut records: Vec<PieceRecord> = Vec::new();
        let mut written = 0u64;
        for (index, source) in args.sources.iter().enumerate() {
            let (reader, data_len) = open_source(source)?;
            let piece_size = piece_size_for(data_len);
            let lengths: Vec<UnpaddedBytesAmount> = infos.iter().map(|i| i.size).collect();
            let used = written + alignment_before(written, piece_size) + u64::from(PaddedBytesAmount::from(piece_size));
            if used > sector_bytes {
                return Err(StepError::DataTooLarge(format!(
                    "piece {index} ({source}, {data_len} bytes, padded {} bytes) ends at byte {used} of a {} sector ({sector_bytes} bytes)",
                    u64::from(PaddedBytesAmount::from(piece_size)),
                    id.size
                )));
            }
            let padded = ExactThenZeros::new(reader, data_len, u64::from(piece_size), source);
            let (info, total) = add_piece(id.seal_proof, padded, &mut file, piece_size, &lengths)
                .map_err(|e| classify_piece_error(e, source))?;
            if let Some(want) = expected.get(index)
                && *want != info.commitment
            {
                return Err(StepError::PieceMismatch {
                    index,
                    source_name: source.clone(),
                    reason: format!(
                        "data has piece CID {} but {} was expected",
                        comm_d_cid(&info.commitment)?,
                        args.expected_cids[index]
                    ),
                });
            }
            written += u64::from(PaddedBytesAmount::from(total));
            records.push(Pieces::record(&info, source.clone())?);
            infos.push(info);
            fault::point("add-piece", "after-piece");
        }
        Pieces {
            cc: false,
            pieces: records,
        }
    };

    file.set_len(sector_bytes).map_err(|e| StepError::io(&tmp, e))?;
    file.sync_all().map_err(|e| StepError::io(&tmp, e))?;
    drop(file);

    let infos = pieces.infos(&target_dir.pieces(), sector_bytes)?;
    let comm_d = compute_comm_d(id.seal_proof, &infos).map_err(|e| StepError::proofs("computing CommD from the pieces", e))?;
    fsutil::rename(&tmp, &unsealed)?;
    layout::write_json(&target_dir.pieces(), &pieces)?;
    Ok(json!({
        "pieces": pieces.pieces.iter().map(|p| json!({"cid": p.cid, "size": p.size})).collect::<Vec<_>>(),
        "cc": pieces.cc,
        "comm_d": comm_d_cid(&comm_d)?,
    }))
}

/// The unpadded piece size (127·2^k) that holds `len` bytes; the rest is zero-filled, as
/// Lotus' padreader does.
fn piece_size_for(len: u64) -> UnpaddedBytesAmount {
    let mut padded = 128u64;
    while padded / 128 * 127 < len.max(MIN_UNPADDED_PIECE) {
        padded *= 2;
    }
    UnpaddedBytesAmount(padded / 128 * 127)
}

/// Zero bytes add_piece writes before a piece so it starts on a multiple of its own size.
fn alignment_before(written_padded: u64, piece: UnpaddedBytesAmount) -> u64 {
    let padded = u64::from(PaddedBytesAmount::from(piece));
    (padded - written_padded % padded) % padded
}

fn classify_piece_error(err: anyhow::Error, source: &str) -> StepError {
    if let Some(io) = err.chain().find_map(|e| e.downcast_ref::<io::Error>())
        && io.kind() == io::ErrorKind::UnexpectedEof
    {
        return StepError::Download {
            url: source.to_string(),
            reason: io.to_string(),
        };
    }
    StepError::proofs("adding piece", err)
}

fn open_source(source: &str) -> StepResult<(Box<dyn Read>, u64)> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let download_err = |reason: String| StepError::Download {
            url: source.to_string(),
            reason,
        };
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(None)
            .build()
            .map_err(|e| download_err(e.to_string()))?;
        let response = client
            .get(source)
            .send()
            .map_err(|e| download_err(e.to_string()))?;
        let status = response.status();
        if status.is_client_error() {
            return Err(StepError::invalid("piece source", format!("{source}: HTTP {status}")));
        }
        if !status.is_success() {
            return Err(download_err(format!("HTTP {status}")));
        }
        let len = response.content_length().ok_or_else(|| {
            StepError::invalid("piece source", format!("{source}: the server sent no Content-Length"))
        })?;
        return Ok((Box::new(response), len));
    }
    let path = PathBuf::from(source.strip_prefix("file://").unwrap_or(source));
    let mut file = File::open(&path).map_err(|e| piece_file_error(&path, e))?;
    let len = file.seek(io::SeekFrom::End(0)).map_err(|e| StepError::io(&path, e))?;
    file.rewind().map_err(|e| StepError::io(&path, e))?;
    if len == 0 {
        return Err(StepError::invalid("piece source", format!("{} is empty", path.display())));
    }
    Ok((Box::new(file), len))
}

fn piece_file_error(path: &Path, err: io::Error) -> StepError {
    if err.kind() == io::ErrorKind::NotFound {
        StepError::invalid("piece source", format!("{}: no such file", path.display()))
    } else {
        StepError::io(path, err)
    }
}

/// Yields exactly `data_len` bytes from `inner` (a short source is an error, not silently
/// zero-filled), then zeros up to `total`.
struct ExactThenZeros<R> {
    inner: R,
    data_left: u64,
    zeros_left: u64,
    source: String,
}

impl<R: Read> ExactThenZeros<R> {
    fn new(inner: R, data_len: u64, total: u64, source: &str) -> Self {
        ExactThenZeros {
            inner,
            data_left: data_len,
            zeros_left: total - data_len,
            source: source.to_string(),
        }
    }
}

impl<R: Read> Read for ExactThenZeros<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.data_left > 0 {
            let want = buf.len().min(self.data_left as usize);
            let n = self.inner.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} ended {} bytes early", self.source, self.data_left),
                ));
            }
            self.data_left -= n as u64;
            return Ok(n);
        }
        let n = buf.len().min(self.zeros_left as usize);
        buf[..n].fill(0);
        self.zeros_left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_sizes_round_up_to_valid_unpadded_sizes() {
        assert_eq!(piece_size_for(1).0, 127);
        assert_eq!(piece_size_for(127).0, 127);
        assert_eq!(piece_size_for(128).0, 254);
        assert_eq!(piece_size_for(1000).0, 1016);
        assert_eq!(piece_size_for(2032).0, 2032);
    }

    #[test]
    fn alignment_puts_a_piece_on_its_own_size() {
        assert_eq!(alignment_before(0, UnpaddedBytesAmount(1016)), 0);
        assert_eq!(alignment_before(256, UnpaddedBytesAmount(1016)), 768);
        assert_eq!(alignment_before(1024, UnpaddedBytesAmount(127)), 0);
    }

    #[test]
    fn short_source_is_an_error_not_zeros() {
        let mut r = ExactThenZeros::new(&b"abc"[..], 5, 8, "test");
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut r = ExactThenZeros::new(&b"abc"[..], 3, 6, "test");
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0\0");
    }
}
