//! One module per sealing step; each reads its inputs from the sector directory, writes its
//! outputs under temporary names, and returns the small JSON result.

pub mod add_piece;
pub mod c1;
pub mod c2;
pub mod check_sealed;
pub mod cache_files;
pub mod pc1;
pub mod pc2;
pub mod persist;
pub mod pieces;
pub mod proving_check;
pub mod remove;
pub mod replicas;
pub mod snap;
pub mod tree_d;
pub mod unseal;
pub mod window_post;
