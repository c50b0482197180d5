//! The `fleetview` command: decode packets now; serve, simulate, relay and send as the project
//! grows. Every protocol byte is handled by the library; this binary only moves bytes and text.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod decode;
mod relay;
mod send;
mod serve;
mod simulate;
mod stream;

#[derive(Parser)]
#[command(
    name = "fleetview",
    version,
    about = "Teltonika tracker toolkit: decode, serve, simulate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode packets given as hex (arguments, or one per line on stdin) and print the JSON model.
    Decode(decode::Args),
    /// Forward UDP datagrams from devices to the edge Worker (POST /udp) and send its acks back.
    Relay(relay::Args),
    /// Run the server: TCP/UDP listeners, SQLite storage, HTTP API and web UI.
    Serve(serve::Args),
    /// Queue a command for a device through a running server and print its answer.
    Send(send::Args),
    /// Virtual trackers driving plausible routes against a server, with resends and statistics.
    Simulate(simulate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Relay(args) => relay::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Send(args) => send::run(args),
        Command::Simulate(args) => simulate::run(args),
    }
}
