//! `durable-execution-storage-convex-codegen generate|check [--root DIR] [--declaration PATH]`
//!
//! Exit codes: 0 success (check: up to date), 1 check found stale output, 2 declaration error,
//! 3 any other error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use durable_execution_storage_convex_codegen::{check, generate, Error, Options};

#[derive(Parser)]
#[command(about = "Generates the Convex component from the Rust declaration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the generated files (only those that changed) and remove stale ones.
    Generate(Args),
    /// Fail (exit 1) with a diff when the generated files are not up to date.
    Check(Args),
}

#[derive(clap::Args)]
struct Args {
    /// The repository root.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// The declaration, relative to the root.
    #[arg(long, default_value = "src/declaration.rs")]
    declaration: PathBuf,
}

impl Args {
    fn options(&self) -> Options {
        let mut options = Options::new(&self.root);
        options.declaration = self.declaration.clone();
        options
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Generate(args) => generate(&args.options()).map(|report| {
            for path in &report.written {
                println!("written    {path}");
            }
            for path in &report.removed {
                println!("removed    {path}");
            }
            println!(
                "{} written, {} unchanged, {} removed in {:.1?}",
                report.written.len(),
                report.unchanged.len(),
                report.removed.len(),
                report.elapsed
            );
            ExitCode::SUCCESS
        }),
        Command::Check(args) => check(&args.options()).map(|report| {
            if report.is_up_to_date() {
                println!("generated files are up to date");
                ExitCode::SUCCESS
            } else {
                print!("{report}");
                eprintln!("generated files are stale: run `cargo codegen generate`");
                ExitCode::from(1)
            }
        }),
    };
    match outcome {
        Ok(code) => code,
        Err(Error::Declaration(rendered)) => {
            eprintln!("{rendered}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(3)
        }
    }
}
