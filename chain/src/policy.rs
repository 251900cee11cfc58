//! Network policy values (builtin-actors `runtime/src/runtime/policy.rs`, miner `policy.rs`) and
//! the ticket and seed epoch arithmetic the chain bridge runs on them.

use fvm_shared::sector::RegisteredSealProof;
use serde::{Deserialize, Serialize};

use crate::ChainEpoch;

pub const EPOCHS_IN_HOUR: ChainEpoch = 120;
pub const EPOCHS_IN_DAY: ChainEpoch = 2880;
pub const CHAIN_FINALITY: ChainEpoch = 900;

/// Window PoSt timing. The chain reports it in every `DeadlineInfo`; these are the values to use
/// before one has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowPoStPolicy {
    pub period_deadlines: u64,
    pub proving_period: ChainEpoch,
    pub challenge_window: ChainEpoch,
    pub challenge_lookback: ChainEpoch,
    pub fault_declaration_cutoff: ChainEpoch,
}

impl WindowPoStPolicy {
    /// Mainnet and every builtin-actors network bundle (the 2k devnet included).
    pub const MAINNET: Self = Self {
        period_deadlines: 48,
        proving_period: EPOCHS_IN_DAY,
        challenge_window: 60,
        challenge_lookback: 20,
        fault_declaration_cutoff: 70,
    };
}

/// The sealing-related policy of one network. What the chain does not report
/// (`PreCommitChallengeDelay` above all) is per-network configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainPolicy {
    /// Epochs between a precommit landing and the epoch its seed is drawn from.
    pub pre_commit_challenge_delay: ChainEpoch,
    /// How far behind the precommit epoch the ticket epoch may be.
    pub max_pre_commit_randomness_lookback: ChainEpoch,
    /// How far behind the head Lotus draws a ticket (`SealRandomnessLookback` = finality).
    pub seal_randomness_lookback: ChainEpoch,
    /// Epochs Lotus waits past the seed epoch before trusting the seed.
    pub interactive_porep_confidence: ChainEpoch,
    pub min_sector_expiration: ChainEpoch,
    pub max_sector_expiration_extension: ChainEpoch,
    pub window_post: WindowPoStPolicy,
}

impl ChainPolicy {
    pub const MAINNET: Self = Self {
        pre_commit_challenge_delay: 150,
        max_pre_commit_randomness_lookback: EPOCHS_IN_DAY + CHAIN_FINALITY,
        seal_randomness_lookback: CHAIN_FINALITY,
        interactive_porep_confidence: 6,
        min_sector_expiration: 180 * EPOCHS_IN_DAY,
        max_sector_expiration_extension: 1278 * EPOCHS_IN_DAY,
        window_post: WindowPoStPolicy::MAINNET,
    };

    /// The Lotus 2k devnet (`short-precommit` actors feature).
    pub const DEVNET_2K: Self = Self { pre_commit_challenge_delay: 10, ..Self::MAINNET };

    /// `max_prove_commit_duration`: how long after precommit the sector may be proven; `None` for
    /// proof types that cannot be interactively proven.
    pub fn max_prove_commit_duration(&self, proof: RegisteredSealProof) -> Option<ChainEpoch> {
        use RegisteredSealProof::*;
        match proof {
            StackedDRG2KiBV1 | StackedDRG8MiBV1 | StackedDRG512MiBV1 | StackedDRG32GiBV1
            | StackedDRG64GiBV1 => Some(EPOCHS_IN_DAY + self.pre_commit_challenge_delay),
            StackedDRG2KiBV1P1 | StackedDRG8MiBV1P1 | StackedDRG512MiBV1P1 | StackedDRG32GiBV1P1
            | StackedDRG64GiBV1P1 | StackedDRG2KiBV1P1_Feat_SyntheticPoRep
            | StackedDRG8MiBV1P1_Feat_SyntheticPoRep | StackedDRG512MiBV1P1_Feat_SyntheticPoRep
            | StackedDRG32GiBV1P1_Feat_SyntheticPoRep | StackedDRG64GiBV1P1_Feat_SyntheticPoRep => {
                Some(30 * EPOCHS_IN_DAY + self.pre_commit_challenge_delay)
            }
            _ => None,
        }
    }

    /// The epoch to draw a fresh ticket from at `head`.
    pub fn ticket_epoch(&self, head: ChainEpoch) -> ChainEpoch {
        (head - self.seal_randomness_lookback).max(0)
    }

    /// The last epoch at which a precommit using a ticket from `ticket_epoch` is accepted
    /// (`curr - max_pre_commit_randomness_lookback <= seal_rand_epoch`).
    pub fn ticket_last_precommit_epoch(&self, ticket_epoch: ChainEpoch) -> ChainEpoch {
        ticket_epoch + self.max_pre_commit_randomness_lookback
    }

    /// What to do with a ticket before sending a precommit at `head`, when the message needs up to
    /// `inclusion_margin` epochs to land.
    pub fn check_ticket(
        &self,
        ticket_epoch: ChainEpoch,
        head: ChainEpoch,
        inclusion_margin: ChainEpoch,
        on_expiry: TicketExpiryAction,
    ) -> TicketCheck {
        let last = self.ticket_last_precommit_epoch(ticket_epoch);
        if head + inclusion_margin <= last {
            TicketCheck::Usable { expires_after: last }
        } else {
            match on_expiry {
                TicketExpiryAction::Reticket => TicketCheck::Reticket { new_ticket_epoch: self.ticket_epoch(head) },
                TicketExpiryAction::Abort => TicketCheck::Abort { expired_after: last },
            }
        }
    }

    /// The epoch whose beacon randomness is the interactive seed.
    pub fn seed_epoch(&self, pre_commit_epoch: ChainEpoch) -> ChainEpoch {
        pre_commit_epoch + self.pre_commit_challenge_delay
    }

    /// The first head at which the seed may be drawn and trusted (Lotus waits for confidence).
    pub fn seed_ready_at(&self, pre_commit_epoch: ChainEpoch) -> ChainEpoch {
        self.seed_epoch(pre_commit_epoch) + self.interactive_porep_confidence
    }

    /// The first epoch at which a prove-commit is accepted (`curr > seed epoch`).
    pub fn first_prove_commit_epoch(&self, pre_commit_epoch: ChainEpoch) -> ChainEpoch {
        self.seed_epoch(pre_commit_epoch) + 1
    }

    /// The last epoch at which a prove-commit is accepted; the precommit expires after it.
    pub fn prove_commit_deadline(&self, pre_commit_epoch: ChainEpoch, proof: RegisteredSealProof) -> Option<ChainEpoch> {
        self.max_prove_commit_duration(proof).map(|d| pre_commit_epoch + d)
    }

    /// The expirations the actor accepts for a precommit executed at `curr`: at least
    /// `min_sector_expiration` after the latest activation the proof type allows, at most
    /// `max_sector_expiration_extension` after `curr` (builtin-actors
    /// actors/miner/src/lib.rs:1306-1316 and `validate_expiration`, lib.rs:4388).
    pub fn expiration_bounds(&self, curr: ChainEpoch, proof: RegisteredSealProof) -> Option<(ChainEpoch, ChainEpoch)> {
        let prove = self.max_prove_commit_duration(proof)?;
        let min = curr + prove + self.min_sector_expiration;
        let max = curr + self.max_sector_expiration_extension;
        Some((min, max))
    }

    /// The expiration to precommit, built at `head` with a ticket from `ticket_epoch`, for a
    /// sector that wants to live until `wanted`. The message lands some epochs after `head`, so
    /// the minimum is taken, as lotus-miner does (storage/pipeline/states_sealing.go:406-408),
    /// from the last epoch the ticket allows a precommit to land: whenever it lands, the actor's
    /// minimum is met. The maximum is the actor's for a message landing at `head + 1`, the
    /// earliest it can. `None` for proof types that cannot be proven interactively.
    pub fn precommit_expiration(
        &self,
        ticket_epoch: ChainEpoch,
        head: ChainEpoch,
        proof: RegisteredSealProof,
        wanted: ChainEpoch,
    ) -> Option<ChainEpoch> {
        let last_landing = self.ticket_last_precommit_epoch(ticket_epoch);
        let (min, _) = self.expiration_bounds(last_landing, proof)?;
        let (_, max) = self.expiration_bounds(head + 1, proof)?;
        Some(wanted.max(min).min(max))
    }
}

/// What the bridge does with a ticket too old to precommit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TicketExpiryAction {
    /// Draw a new ticket and seal again from PC1.
    Reticket,
    /// Give the sector up.
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketCheck {
    Usable { expires_after: ChainEpoch },
    Reticket { new_ticket_epoch: ChainEpoch },
    Abort { expired_after: ChainEpoch },
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegisteredSealProof::*;

    #[test]
    fn prove_commit_duration_per_proof_type() {
        assert_eq!(ChainPolicy::MAINNET.max_prove_commit_duration(StackedDRG32GiBV1P1), Some(86_550));
        assert_eq!(ChainPolicy::DEVNET_2K.max_prove_commit_duration(StackedDRG2KiBV1P1), Some(86_410));
        assert_eq!(ChainPolicy::MAINNET.max_prove_commit_duration(StackedDRG32GiBV1), Some(3030));
        assert_eq!(ChainPolicy::MAINNET.max_prove_commit_duration(StackedDRG32GiBV1P2_Feat_NiPoRep), None);
    }

    #[test]
    fn ticket_is_usable_up_to_the_lookback_minus_margin() {
        let p = ChainPolicy::DEVNET_2K;
        // A ticket from epoch 100 may be precommitted until 100 + 3780 = 3880.
        assert_eq!(p.check_ticket(100, 3870, 10, TicketExpiryAction::Abort), TicketCheck::Usable { expires_after: 3880 });
        assert_eq!(p.check_ticket(100, 3871, 10, TicketExpiryAction::Abort), TicketCheck::Abort { expired_after: 3880 });
        assert_eq!(
            p.check_ticket(100, 3871, 10, TicketExpiryAction::Reticket),
            TicketCheck::Reticket { new_ticket_epoch: 3871 - 900 }
        );
    }

    #[test]
    fn seed_waits_for_the_delay_and_confidence() {
        let p = ChainPolicy::DEVNET_2K;
        assert_eq!(p.seed_epoch(50), 60);
        assert_eq!(p.seed_ready_at(50), 66);
        assert_eq!(p.first_prove_commit_epoch(50), 61);
        assert_eq!(ChainPolicy::MAINNET.seed_epoch(50), 200);
        assert_eq!(p.prove_commit_deadline(50, StackedDRG2KiBV1P1), Some(50 + 86_410));
    }

    #[test]
    fn a_precommit_expiration_is_accepted_wherever_the_message_lands_before_the_ticket_expires() {
        let p = ChainPolicy::DEVNET_2K;
        let ticket = 100;
        let head = 1500;
        // A sector that wants exactly the minimum lifetime (expirationDays: 180), counted from
        // the head the message is built at, as the bridge did before.
        let wanted = head + p.max_prove_commit_duration(StackedDRG2KiBV1P1).unwrap() + 180 * EPOCHS_IN_DAY;
        let (old_min, _) = p.expiration_bounds(head, StackedDRG2KiBV1P1).unwrap();
        let (actor_min, _) = p.expiration_bounds(head + 1, StackedDRG2KiBV1P1).unwrap();
        assert!(wanted.max(old_min) < actor_min, "the old choice is refused when the message lands one epoch later");

        let expiration = p.precommit_expiration(ticket, head, StackedDRG2KiBV1P1, wanted).unwrap();
        // The actor's check at every epoch the precommit may execute (lib.rs:1306-1316).
        for curr in head + 1..=p.ticket_last_precommit_epoch(ticket) {
            let (min, max) = p.expiration_bounds(curr, StackedDRG2KiBV1P1).unwrap();
            assert!((min..=max).contains(&expiration), "refused at {curr}: {expiration} not in {min}..={max}");
        }
        // A longer wish is kept, up to the maximum.
        let long = expiration + 1000;
        assert_eq!(p.precommit_expiration(ticket, head, StackedDRG2KiBV1P1, long), Some(long));
        let too_long = head + 2000 * EPOCHS_IN_DAY;
        assert_eq!(p.precommit_expiration(ticket, head, StackedDRG2KiBV1P1, too_long), Some(head + 1 + p.max_sector_expiration_extension));
        assert_eq!(p.precommit_expiration(ticket, head, StackedDRG32GiBV1P2_Feat_NiPoRep, wanted), None);
    }

    #[test]
    fn young_chains_draw_tickets_from_genesis() {
        assert_eq!(ChainPolicy::DEVNET_2K.ticket_epoch(20), 0);
        assert_eq!(ChainPolicy::DEVNET_2K.ticket_epoch(1000), 100);
    }
}
