//! CEL rules shared by the CRDs. The API server reports each failure with the path of the field
//! that carries the rule, so the messages say what is wrong and what is expected.

/// A miner actor ID address: `f0` on mainnet, `t0` on test networks.
pub const MINER_ADDRESS: &str = "self.matches('^[ft]0[0-9]{1,19}$')";
pub const MINER_ADDRESS_MESSAGE: &str = "must be a miner ID address such as t01000 or f01000";

pub const IMMUTABLE: &str = "self == oldSelf";

/// An absolute path that does not climb out of itself.
pub const ABSOLUTE_PATH: &str = "self.startsWith('/') && !self.contains('/../') && !self.endsWith('/..')";
pub const ABSOLUTE_PATH_MESSAGE: &str = "must be an absolute path without '..'";

/// The name of an object such as a PriorityClass: a lowercase DNS subdomain.
pub const DNS_SUBDOMAIN: &str = "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
pub const DNS_SUBDOMAIN_MESSAGE: &str = "must be a lowercase DNS subdomain such as sealing-window-post";

/// Bytes per sector size, for rules that compare sizes.
pub const SECTOR_BYTES: &str =
    "{'2KiB': 2048, '8MiB': 8388608, '512MiB': 536870912, '32GiB': 34359738368, '64GiB': 68719476736}";

use crate::core::Plan;

/// `spec.resume.state` must be a state of the sector's plan, or Aborted.
pub fn resume_state_in_plan() -> String {
    let plans: Vec<String> = [Plan::Sealer, Plan::Snapup, Plan::Rebuild]
        .iter()
        .map(|plan| {
            let states: Vec<String> = plan.states().iter().map(|s| format!("'{s}'")).collect();
            format!("'{plan}': [{}]", states.join(", "))
        })
        .collect();
    format!(
        "!has(self.resume) || !has(self.resume.state) || self.resume.state == 'Aborted' || self.resume.state in {{{}}}[self.plan]",
        plans.join(", ")
    )
}

/// A padded piece size: a power of two from 128 bytes to the largest sector. CEL has no bit
/// operations, so the rule lists them.
pub fn padded_piece_size() -> String {
    let sizes: Vec<String> = (7..=36).map(|shift| (1u64 << shift).to_string()).collect();
    format!("self in [{}]", sizes.join(", "))
}
