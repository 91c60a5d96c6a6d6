//! `shakedown scenario import openapi|har`: write a scenario file from an OpenAPI description or
//! a browser recording, so that a user's first scenario starts from their own API instead of a
//! blank page. The work is `scenarios::import`; this turns its errors into exit 2 and guards the
//! output file (an edited scenario is not overwritten by accident).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use scenarios::import;

use super::{Exit, exit};

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(subcommand)]
    source: Source,
}

#[derive(Subcommand, Debug)]
enum Source {
    /// One step per operation of an OpenAPI 3.0 or 3.1 description (YAML or JSON): path
    /// parameters as variables, bodies from its examples or generated from its schemas (marked
    /// for you to edit), the documented 2xx status as the check.
    Openapi {
        /// The OpenAPI description (one file; `$ref`s within it are followed).
        spec: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// One step per request of a browser recording (HAR 1.2) to the application: static assets
    /// and other hosts left out, the recorded pauses as think times, tokens and ids the server
    /// handed out extracted into variables.
    Har {
        /// The recording (in a browser's network panel: "Save all as HAR").
        recording: PathBuf,
        /// Keep requests to this host (`shop.example.com` or `127.0.0.1:8080`); default: the
        /// host of the first request that is not a static asset.
        #[arg(long)]
        host: Option<String>,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Args, Debug)]
struct Output {
    /// The scenario file to write.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: ImportArgs) -> Result<Exit> {
    let (text, output) = match args.source {
        Source::Openapi { spec, output } => {
            refuse_overwrite(&output)?;
            (import::openapi(&spec), output)
        }
        Source::Har {
            recording,
            host,
            output,
        } => {
            refuse_overwrite(&output)?;
            (
                import::har(&recording, &import::HarOptions { host }),
                output,
            )
        }
    };
    let text = text.map_err(|e| exit::usage(e.to_string()))?;
    std::fs::write(&output.out, &text).map_err(|e| {
        exit::usage(format!(
            "cannot write the scenario to {}: {e}",
            output.out.display()
        ))
    })?;
    let steps = text.lines().filter(|l| l.starts_with("  - name: ")).count();
    eprintln!(
        "wrote {} ({steps} steps); check it with `shakedown scenario check {}`",
        output.out.display(),
        output.out.display()
    );
    Ok(Exit::Pass)
}

/// Checked before the import, so an existing file is never half-replaced.
fn refuse_overwrite(output: &Output) -> Result<()> {
    if !output.force && Path::new(&output.out).exists() {
        return Err(exit::usage(format!(
            "{} exists: pass --force to overwrite it",
            output.out.display()
        )));
    }
    Ok(())
}
