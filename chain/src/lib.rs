//! Lotus/Venus JSON-RPC client and miner-actor message encoding.
