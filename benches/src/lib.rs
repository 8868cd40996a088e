//! Benchmarks crate: the criterion benches of the sans-IO core live in `benches/`, the
//! `loadgen` binary (a WHIP/WHEP load generator that measures a running server) in
//! [`loadgen`], and the `ideal_forwarder` baseline it is compared with in [`ideal`].

pub mod ideal;
pub mod loadgen;
