//! `rungs`: turn a source master into a streaming-ready title.
//!
//! `main` is small on purpose: [`run`] does the work and returns the exit code; errors are
//! printed with their whole chain and mapped to the documented exit codes in [`exit`].

mod args;
mod commands;
mod config;
mod encode;
mod exit;
mod fill;
mod fleet;
mod interrupt;
mod logging;
mod output;
#[cfg(test)]
mod reference;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // SVT-AV1 prints a banner and its configuration straight to stderr for every encoder it
    // opens; keep only its errors unless the user asked otherwise.
    if std::env::var_os("SVT_LOG").is_none() {
        // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
        unsafe { std::env::set_var("SVT_LOG", "1") };
    }
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE.into()
            } else {
                exit::OK.into()
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::for_error(&e).into()
        }
    }
}

fn run(cli: args::Cli) -> anyhow::Result<ExitCode> {
    logging::init(&cli.global);
    commands::dispatch(cli)
}
