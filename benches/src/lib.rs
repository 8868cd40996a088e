//! Benchmarks crate: the criterion benches of the sans-IO core live in `benches/`, the
//! `loadgen` binary (a WHIP/WHEP load generator that measures a running server) in
//! [`loadgen`].

pub mod loadgen;
