//! Status conditions that keep their transition time while their status does not change.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub struct Desired<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: &'a str,
    pub message: String,
}

pub fn set(conditions: &mut Vec<Condition>, desired: Desired<'_>, generation: Option<i64>, now: Timestamp) {
    let status = if desired.status { "True" } else { "False" };
    let existing = conditions.iter_mut().find(|c| c.type_ == desired.type_);
    let transition = match &existing {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    let condition = Condition {
        type_: desired.type_.to_owned(),
        status: status.to_owned(),
        reason: desired.reason.to_owned(),
        message: desired.message,
        observed_generation: generation,
        last_transition_time: transition,
    };
    match existing {
        Some(c) => *c = condition,
        None => conditions.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_moves_only_when_the_status_changes() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let mut conditions = Vec::new();
        let paused = |status, reason: &'static str| Desired { type_: "Paused", status, reason, message: String::new() };
        set(&mut conditions, paused(true, "Requested"), Some(1), t0);
        set(&mut conditions, paused(true, "Error"), Some(2), t1);
        assert_eq!((conditions[0].last_transition_time.0, conditions[0].reason.as_str()), (t0, "Error"));
        set(&mut conditions, paused(false, "Running"), Some(2), t1);
        assert_eq!(conditions[0].last_transition_time.0, t1);
        assert_eq!(conditions.len(), 1);
    }
}
