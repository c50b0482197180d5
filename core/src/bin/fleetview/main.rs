//! The `fleetview` command. Feature `cli` builds the offline subcommands (`decode`, `pcap`); feature
//! `server` adds `serve`, `simulate`, `relay` and `send`, with their runtime, database and HTTP
//! dependencies. Every protocol byte is handled by the library; this binary only moves bytes
//! and text. The subcommands and their flags are documented in `core/docs/cli.md`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod decode;
mod pcap;
#[cfg(feature = "server")]
mod relay;
#[cfg(feature = "server")]
mod send;
#[cfg(feature = "server")]
mod serve;
#[cfg(feature = "server")]
mod simulate;
#[cfg(feature = "server")]
mod stream;
#[cfg(feature = "server")]
mod token;

#[derive(Parser)]
#[command(name = "fleetview", version, about = ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(feature = "server")]
const ABOUT: &str = "Teltonika tracker toolkit: decode, pcap, serve, simulate, relay, send";
#[cfg(not(feature = "server"))]
const ABOUT: &str =
    "Teltonika tracker toolkit: decode, pcap (built without the server subcommands)";

#[derive(Subcommand)]
enum Command {
    /// Decode packets given as hex (arguments, or one per line on stdin) and print the JSON model.
    Decode(decode::Args),
    /// Explain a .pcap/.pcapng capture: device sessions decoded, server replies interpreted,
    /// problems found.
    Pcap(pcap::Args),
    /// Forward UDP datagrams from devices to the edge Worker (POST /udp) and send its acks back.
    #[cfg(feature = "server")]
    Relay(relay::Args),
    /// Run the server: TCP/UDP listeners, SQLite or PostgreSQL storage, HTTP API and web UI.
    #[cfg(feature = "server")]
    Serve(Box<serve::Args>),
    /// Queue a command for a device through a running server and print its answer.
    #[cfg(feature = "server")]
    Send(send::Args),
    /// Virtual trackers driving plausible routes against a server, with resends and statistics.
    #[cfg(feature = "server")]
    Simulate(simulate::Args),
}

/// The subcommands that feature `server` adds: a binary built without them says how to get
/// them rather than only "unrecognized subcommand".
#[cfg(not(feature = "server"))]
const SERVER_COMMANDS: [&str; 4] = ["relay", "serve", "send", "simulate"];

fn main() -> ExitCode {
    #[cfg(not(feature = "server"))]
    if let Some(name) = std::env::args()
        .nth(1)
        .filter(|a| SERVER_COMMANDS.contains(&a.as_str()))
    {
        eprintln!(
            "fleetview: `{name}` is not in this build: it needs feature `server` \
             (build with --features server); this build offers `decode` and `pcap` only"
        );
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Pcap(args) => pcap::run(args),
        #[cfg(feature = "server")]
        Command::Relay(args) => relay::run(args),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::run(*args),
        #[cfg(feature = "server")]
        Command::Send(args) => send::run(args),
        #[cfg(feature = "server")]
        Command::Simulate(args) => simulate::run(args),
    }
}
