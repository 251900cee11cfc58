//! Chain simulator.
