//! `loadgen`: WHIP/WHEP load generator measuring server CPU per forwarded packet.
//! See benches/README.md ("Load generator") for how to run it and what it reports.

use std::process::ExitCode;

use clap::Parser;
use switchyard_benches::loadgen::{cli::Cli, command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread for every peer: the generator should stay small next to the server.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, command::execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
