//! Window PoSt deadline arithmetic, as builtin-actors `miner/src/deadline_info.rs` does it, in the
//! JSON shape `StateMinerProvingDeadline` returns (`dline.Info`).

use serde::{Deserialize, Serialize};

use crate::ChainEpoch;
use crate::policy::WindowPoStPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadlineInfo {
    /// Epoch at which this info was calculated.
    pub current_epoch: ChainEpoch,
    /// First epoch of the proving period (<= CurrentEpoch).
    pub period_start: ChainEpoch,
    /// Deadline index, in [0, WPoStPeriodDeadlines).
    pub index: u64,
    /// First epoch from which a proof may be submitted.
    pub open: ChainEpoch,
    /// First epoch from which a proof may no longer be submitted.
    pub close: ChainEpoch,
    /// Epoch whose beacon randomness challenges the proof (< Open).
    pub challenge: ChainEpoch,
    /// First epoch at which a fault or recovery declaration is rejected (< Open).
    pub fault_cutoff: ChainEpoch,
    #[serde(rename = "WPoStPeriodDeadlines")]
    pub wpost_period_deadlines: u64,
    #[serde(rename = "WPoStProvingPeriod")]
    pub wpost_proving_period: ChainEpoch,
    #[serde(rename = "WPoStChallengeWindow")]
    pub wpost_challenge_window: ChainEpoch,
    #[serde(rename = "WPoStChallengeLookback")]
    pub wpost_challenge_lookback: ChainEpoch,
    pub fault_declaration_cutoff: ChainEpoch,
}

impl DeadlineInfo {
    pub fn new(period_start: ChainEpoch, index: u64, current_epoch: ChainEpoch, p: &WindowPoStPolicy) -> Self {
        let (open, close, challenge, fault_cutoff) = if index < p.period_deadlines {
            let open = period_start + index as i64 * p.challenge_window;
            (open, open + p.challenge_window, open - p.challenge_lookback, open - p.fault_declaration_cutoff)
        } else {
            let after_last = period_start + p.proving_period;
            (after_last, after_last, after_last, 0)
        };
        Self {
            current_epoch,
            period_start,
            index,
            open,
            close,
            challenge,
            fault_cutoff,
            wpost_period_deadlines: p.period_deadlines,
            wpost_proving_period: p.proving_period,
            wpost_challenge_window: p.challenge_window,
            wpost_challenge_lookback: p.challenge_lookback,
            fault_declaration_cutoff: p.fault_declaration_cutoff,
        }
    }

    /// The deadline that is current at `current_epoch` for a miner whose proving periods start at
    /// epochs ≡ `offset` (mod the proving period): `new_deadline_info_from_offset_and_epoch`.
    pub fn current(offset: ChainEpoch, current_epoch: ChainEpoch, p: &WindowPoStPolicy) -> Self {
        let period_start = current_proving_period_start(offset, current_epoch, p);
        let index = ((current_epoch - period_start) / p.challenge_window) as u64;
        Self::new(period_start, index, current_epoch, p)
    }

    pub fn policy(&self) -> WindowPoStPolicy {
        WindowPoStPolicy {
            period_deadlines: self.wpost_period_deadlines,
            proving_period: self.wpost_proving_period,
            challenge_window: self.wpost_challenge_window,
            challenge_lookback: self.wpost_challenge_lookback,
            fault_declaration_cutoff: self.fault_declaration_cutoff,
        }
    }

    pub fn period_started(&self) -> bool {
        self.current_epoch >= self.period_start
    }

    pub fn period_elapsed(&self) -> bool {
        self.current_epoch >= self.next_period_start()
    }

    pub fn period_end(&self) -> ChainEpoch {
        self.period_start + self.wpost_proving_period - 1
    }

    pub fn next_period_start(&self) -> ChainEpoch {
        self.period_start + self.wpost_proving_period
    }

    pub fn is_open(&self) -> bool {
        self.current_epoch >= self.open && self.current_epoch < self.close
    }

    pub fn has_elapsed(&self) -> bool {
        self.current_epoch >= self.close
    }

    /// The last epoch at which a proof may be submitted.
    pub fn last(&self) -> ChainEpoch {
        self.close - 1
    }

    pub fn fault_cutoff_passed(&self) -> bool {
        self.current_epoch >= self.fault_cutoff
    }

    /// The next instance of this deadline that has not yet elapsed.
    pub fn next_not_elapsed(self) -> Self {
        if !self.has_elapsed() {
            return self;
        }
        // Skip whole proving periods at once instead of stepping one by one as the actor does;
        // the result is the same.
        let periods = (self.current_epoch - self.close) / self.wpost_proving_period + 1;
        let next = Self::new(
            self.period_start + periods * self.wpost_proving_period,
            self.index,
            self.current_epoch,
            &self.policy(),
        );
        debug_assert!(!next.has_elapsed());
        next
    }

    /// The same deadline seen from another epoch.
    pub fn at_epoch(self, current_epoch: ChainEpoch) -> Self {
        Self { current_epoch, ..self }
    }
}

/// First epoch of the proving period containing `current_epoch` (`current_proving_period_start`).
pub fn current_proving_period_start(offset: ChainEpoch, current_epoch: ChainEpoch, p: &WindowPoStPolicy) -> ChainEpoch {
    let modulus = current_epoch.rem_euclid(p.proving_period);
    let progress = if modulus >= offset { modulus - offset } else { p.proving_period - (offset - modulus) };
    current_epoch - progress
}

/// Whether sectors may be assigned to deadline `index` now: not while it is open or about to open
/// (`deadline_is_mutable`).
pub fn deadline_is_mutable(period_start: ChainEpoch, index: u64, current_epoch: ChainEpoch, p: &WindowPoStPolicy) -> bool {
    let info = DeadlineInfo::new(period_start, index, current_epoch, p).next_not_elapsed();
    current_epoch < info.open - p.challenge_window
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAINNET: WindowPoStPolicy = WindowPoStPolicy::MAINNET;

    #[test]
    fn mainnet_deadline_numbers() {
        let dl = DeadlineInfo::new(1000, 3, 1200, &MAINNET);
        assert_eq!((dl.open, dl.close, dl.challenge, dl.fault_cutoff), (1180, 1240, 1160, 1110));
        assert!(dl.is_open());
        assert_eq!(dl.last(), 1239);
        let after = DeadlineInfo::new(1000, 48, 1200, &MAINNET);
        assert_eq!((after.open, after.close, after.challenge, after.fault_cutoff), (3880, 3880, 3880, 0));
    }

    #[test]
    fn next_not_elapsed_matches_stepping_period_by_period() {
        for current in [0i64, 59, 60, 2879, 2880, 9000, 20_000] {
            let dl = DeadlineInfo::new(0, 0, current, &MAINNET);
            let mut stepped = dl;
            while stepped.has_elapsed() {
                stepped = DeadlineInfo::new(stepped.next_period_start(), 0, current, &MAINNET);
            }
            assert_eq!(dl.next_not_elapsed(), stepped, "at {current}");
        }
    }

    #[test]
    fn current_deadline_follows_the_miner_offset() {
        let dl = DeadlineInfo::current(100, 250, &MAINNET);
        assert_eq!(dl.period_start, 100);
        assert_eq!(dl.index, 2);
        let wrapped = DeadlineInfo::current(100, 50, &MAINNET);
        assert_eq!(wrapped.period_start, 100 - 2880);
        assert_eq!(wrapped.index, ((50 - (100 - 2880)) / 60) as u64);
    }

    #[test]
    fn open_and_next_deadlines_are_immutable() {
        // Deadline 3 opens at 180: immutable from 120 on, mutable again once it closes.
        assert!(deadline_is_mutable(0, 3, 119, &MAINNET));
        assert!(!deadline_is_mutable(0, 3, 120, &MAINNET));
        assert!(!deadline_is_mutable(0, 3, 239, &MAINNET));
        assert!(deadline_is_mutable(0, 3, 240, &MAINNET));
    }

    #[test]
    fn json_field_names_match_dline_info() {
        let v = serde_json::to_value(DeadlineInfo::new(0, 0, 0, &MAINNET)).unwrap();
        for key in [
            "CurrentEpoch", "PeriodStart", "Index", "Open", "Close", "Challenge", "FaultCutoff",
            "WPoStPeriodDeadlines", "WPoStProvingPeriod", "WPoStChallengeWindow",
            "WPoStChallengeLookback", "FaultDeclarationCutoff",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
    }
}
