//! The sealing core: state machines, error levels, retries and pause/resume. No Kubernetes types;
//! controllers read the world, ask these functions, and write the result.

pub mod control;
pub mod error;
pub mod lotus;
pub mod outcome;
pub mod proof;
pub mod proving;
pub mod record;
pub mod retry;
pub mod schedule;
pub mod state;
pub mod transition;
pub mod work;

pub use error::{ErrorLevel, StepError};
pub use proof::{SealProof, SectorSize};
pub use record::SectorRecord;
pub use state::{Plan, State};
pub use transition::{Event, apply};
