use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use sealer_pod::cli::Cli;
use sealer_pod::error::{Level, StepError};
use sealer_pod::output::{self, DEFAULT_RESULT_PATH};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&e),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let step = cli.command.name();
    let (doc, code) = match cli.command.run() {
        Ok(result) => (output::success(step, result), 0),
        Err(err) => {
            tracing::error!(step, level = ?err.level(), "{err}");
            (output::failure(step, &err), err.level().exit_code())
        }
    };
    finish(&cli.result_path, &doc, code)
}

/// A malformed command line needs a different invocation, so it is a permanent failure with the
/// same JSON shape as any other, not clap's exit code 2 (which the operator would retry).
fn usage_error(err: &clap::Error) -> ExitCode {
    let _ = err.print();
    let args: Vec<String> = std::env::args().collect();
    let step = args.iter().skip(1).find(|a| !a.starts_with('-')).map(String::as_str).unwrap_or("unknown");
    let result_path = args
        .iter()
        .position(|a| a == "--result-path")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .or_else(|| args.iter().find_map(|a| a.strip_prefix("--result-path=")))
        .unwrap_or(DEFAULT_RESULT_PATH);
    let message = err.render().to_string();
    let err = StepError::invalid("command line", message.trim().to_string());
    debug_assert_eq!(err.level(), Level::Permanent);
    finish(std::path::Path::new(result_path), &output::failure(step, &err), err.level().exit_code())
}

fn finish(result_path: &std::path::Path, doc: &str, code: i32) -> ExitCode {
    if let Err(e) = output::write_result(result_path, doc) {
        eprintln!("sealer-pod: could not write the result to {}: {e}", result_path.display());
    }
    println!("{doc}");
    ExitCode::from(code as u8)
}
