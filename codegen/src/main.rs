//! `durable-execution-storage-convex-codegen generate|check [--root DIR] [--config FILE]`
//! `durable-execution-storage-convex-codegen generate|check --declaration PATH [--out DIR] [--app DIR] [--package NAME]`
//!
//! Without `--declaration`, every target of the config file (`codegen.json` at the root) is
//! generated or checked; without that file, the repository's own declaration
//! (`src/declaration.rs` → `generated/`, `convex/app`). With `--declaration`, that one
//! declaration, written to `--out` (the component package) and `--app` (the app's functions
//! directory).
//!
//! Exit codes: 0 success (check: up to date), 1 check found stale output, 2 declaration error,
//! 3 any other error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use durable_execution_storage_convex_codegen::{
    check, generate, Error, Options, OutputLayout, DEFAULT_CONFIG,
};

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
    /// The targets (declaration and output folders), relative to the root; used when no
    /// `--declaration` is given.
    #[arg(long, default_value = DEFAULT_CONFIG, conflicts_with = "declaration")]
    config: PathBuf,
    /// One declaration, relative to the root, instead of the config's targets.
    #[arg(long)]
    declaration: Option<PathBuf>,
    /// With `--declaration`: the component package directory (component/, publicApi.ts,
    /// package.json).
    #[arg(long, requires = "declaration", default_value = "generated")]
    out: String,
    /// With `--declaration`: the app's functions directory (the app module and _generated/).
    #[arg(long, requires = "declaration", default_value = "convex/app")]
    app: String,
    /// With `--declaration`: the npm name the app installs the component package under (the
    /// app module then imports the public API through it); without, by relative path.
    #[arg(long, requires = "declaration")]
    package: Option<String>,
}

impl Args {
    fn targets(&self) -> Result<Vec<Options>, Error> {
        match &self.declaration {
            Some(declaration) => Ok(vec![Options {
                root: self.root.clone(),
                declaration: declaration.clone(),
                layout: OutputLayout {
                    package: self.package.clone(),
                    ..OutputLayout::new(&self.out, &self.app)
                },
            }]),
            None => Options::from_config(&self.root, &self.config),
        }
    }
}

fn run(command: &Command) -> Result<ExitCode, Error> {
    let (Command::Generate(args) | Command::Check(args)) = command;
    let mut code = ExitCode::SUCCESS;
    for options in args.targets()? {
        let declaration = options.declaration.display();
        match command {
            Command::Generate(_) => {
                let report = generate(&options)?;
                for path in &report.written {
                    println!("written    {path}");
                }
                for path in &report.removed {
                    println!("removed    {path}");
                }
                println!(
                    "{declaration}: {} written, {} unchanged, {} removed in {:.1?}",
                    report.written.len(),
                    report.unchanged.len(),
                    report.removed.len(),
                    report.elapsed
                );
            }
            Command::Check(_) => {
                let report = check(&options)?;
                if report.is_up_to_date() {
                    println!("{declaration}: generated files are up to date");
                } else {
                    print!("{report}");
                    eprintln!(
                        "{declaration}: generated files are stale: run `cargo codegen generate`"
                    );
                    code = ExitCode::from(1);
                }
            }
        }
    }
    Ok(code)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.command) {
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
