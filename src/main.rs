//! The `embedeval` binary: parses the command line and hands it to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = embedeval::cli::Cli::parse();
    match embedeval::cli::main(cli).await {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(err) => {
            match err.downcast_ref::<tonic::Status>() {
                Some(status) => eprintln!("embedeval: {:?}: {}", status.code(), status.message()),
                None => eprintln!("embedeval: {err:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
