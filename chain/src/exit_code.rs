//! Classifies message receipts into the operator's error levels (damocles' taxonomy):
//! temporary (resend later), permanent (needs a person: funds, addresses, a bug) or abort (the
//! sector's on-chain path is gone; seal again or give it up).

use fvm_shared::error::ExitCode;
use serde::{Deserialize, Serialize};

use crate::methods::MinerMethod;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorLevel {
    Temporary,
    Permanent,
    Abort,
}

/// The error level of a non-zero exit code from `method`; `None` for success.
pub fn classify(method: MinerMethod, code: ExitCode) -> Option<ErrorLevel> {
    use ErrorLevel::*;
    use MinerMethod::*;
    if code.is_success() {
        return None;
    }
    let level = match code {
        // Nonce races and gas estimates that fell short: sending again fixes them.
        ExitCode::SYS_SENDER_STATE_INVALID | ExitCode::SYS_OUT_OF_GAS => Temporary,
        // Someone has to add funds or fix the sender/receiver configuration.
        ExitCode::SYS_INSUFFICIENT_FUNDS | ExitCode::USR_INSUFFICIENT_FUNDS => Permanent,
        ExitCode::SYS_SENDER_INVALID | ExitCode::SYS_INVALID_RECEIVER => Permanent,
        ExitCode::USR_FORBIDDEN => match method {
            // "too early to prove sector": the seed epoch has not passed yet.
            ProveCommitSectors3 => Temporary,
            // The deadline is not open (any more): the next one will be.
            SubmitWindowedPoSt => Temporary,
            // The sender is not the worker or a control address.
            _ => Permanent,
        },
        ExitCode::USR_ILLEGAL_ARGUMENT => match method {
            // The ticket epoch, CommR or expiration was refused: the replica built on them can
            // never be precommitted as it is.
            PreCommitSectorBatch2 => Abort,
            // The proof did not verify; it can be computed again while the precommit lives.
            ProveCommitSectors3 => Permanent,
            SubmitWindowedPoSt => Permanent,
            // "late fault or recovery declaration": declare against the next deadline.
            DeclareFaults | DeclareFaultsRecovered => Temporary,
        },
        // The precommit is gone (expired or never landed).
        ExitCode::USR_NOT_FOUND => match method {
            ProveCommitSectors3 => Abort,
            _ => Permanent,
        },
        ExitCode::USR_ILLEGAL_STATE => match method {
            // The sector number is already allocated or precommitted.
            PreCommitSectorBatch2 => Abort,
            _ => Temporary,
        },
        // Encoding bugs, removed methods, actor assertions: retrying the same bytes cannot help.
        _ => Permanent,
    };
    Some(level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorLevel::*;
    use MinerMethod::*;

    #[test]
    fn table() {
        assert_eq!(classify(PreCommitSectorBatch2, ExitCode::OK), None);
        assert_eq!(classify(PreCommitSectorBatch2, ExitCode::SYS_OUT_OF_GAS), Some(Temporary));
        assert_eq!(classify(ProveCommitSectors3, ExitCode::USR_FORBIDDEN), Some(Temporary));
        assert_eq!(classify(PreCommitSectorBatch2, ExitCode::USR_FORBIDDEN), Some(Permanent));
        assert_eq!(classify(PreCommitSectorBatch2, ExitCode::USR_ILLEGAL_ARGUMENT), Some(Abort));
        assert_eq!(classify(ProveCommitSectors3, ExitCode::USR_ILLEGAL_ARGUMENT), Some(Permanent));
        assert_eq!(classify(ProveCommitSectors3, ExitCode::USR_NOT_FOUND), Some(Abort));
        assert_eq!(classify(DeclareFaults, ExitCode::USR_ILLEGAL_ARGUMENT), Some(Temporary));
        assert_eq!(classify(SubmitWindowedPoSt, ExitCode::USR_INSUFFICIENT_FUNDS), Some(Permanent));
        assert_eq!(classify(SubmitWindowedPoSt, ExitCode::USR_SERIALIZATION), Some(Permanent));
        assert_eq!(classify(ProveCommitSectors3, ExitCode::new(1000)), Some(Permanent));
    }
}
