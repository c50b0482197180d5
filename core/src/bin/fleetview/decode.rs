//! `fleetview decode`: hex in, the JSON model out.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use fleetview::json::{ErrorJson, ItemJson, JsonOptions};
use fleetview::DecodeOptions;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One JSON document: the packet object, or an array when there are several.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// An RFC 7946 FeatureCollection: a Point per record with a fix, a LineString per device.
    Geojson,
    /// One row per record, one column per IO name present.
    Csv,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Packets as hex (spaces, commas, 0x prefixes allowed). `-` or none: read stdin, one packet
    /// per line.
    hex: Vec<String>,
    /// Decode inconsistent packets (CRC, length, count mismatches) and list the problems as
    /// warnings instead of failing.
    #[arg(long)]
    lenient: bool,
    /// Device model for IO names and scaling (e.g. FMB920). Default: the most common FMB
    /// definitions.
    #[arg(long)]
    model: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

pub(crate) fn run(args: Args) -> ExitCode {
    if let Some(m) = &args.model {
        if !fleetview::io_catalog::is_known_model(m) {
            eprintln!(
                "fleetview: unknown model {m:?}: IO names fall back to the common FMB definitions"
            );
        }
    }
    let inputs: Vec<String> = if args.hex.is_empty() || args.hex == ["-"] {
        io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .collect()
    } else {
        args.hex.clone()
    };
    let opts = if args.lenient {
        DecodeOptions::lenient()
    } else {
        DecodeOptions::default()
    };
    let json_opts = JsonOptions {
        model: args.model.clone(),
    };
    let mut items = Vec::new();
    let mut packets = Vec::new();
    let mut failed = false;
    for text in &inputs {
        let bytes = match fleetview::hex::decode(text) {
            Ok(b) => b,
            Err(e) => {
                failed = true;
                items.push(ItemJson::Error(ErrorJson::from(&e)));
                continue;
            }
        };
        for result in fleetview::decode_each(&bytes, &opts) {
            failed |= result.is_err();
            items.push(ItemJson::new(&result, &json_opts));
            if let Ok(p) = result {
                packets.push(p);
            }
        }
    }
    if inputs.is_empty() {
        eprintln!("fleetview: nothing to decode (give hex arguments or lines on stdin)");
        return ExitCode::from(2);
    }
    let mut out = io::stdout().lock();
    let written = match args.format {
        Format::Json if items.len() == 1 => writeln!(out, "{}", pretty(&items[0])),
        Format::Json => writeln!(out, "{}", pretty(&items)),
        Format::Ndjson => items
            .iter()
            .try_for_each(|v| writeln!(out, "{}", serde_json::to_string(v).expect("serializable"))),
        // Map and table formats carry no error objects: errors go to stderr.
        Format::Geojson | Format::Csv => {
            report_errors(&items);
            if args.format == Format::Csv {
                write!(
                    out,
                    "{}",
                    fleetview::export::csv(&packets, args.model.as_deref())
                )
            } else {
                let fc = fleetview::export::feature_collection(&packets, args.model.as_deref());
                writeln!(out, "{}", pretty(&fc))
            }
        }
    };
    if written.is_err() {
        return ExitCode::from(2);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report_errors(items: &[ItemJson]) {
    for item in items {
        if let ItemJson::Error(e) = item {
            eprintln!("fleetview: {}", e.error.message);
        }
    }
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("serializable")
}
