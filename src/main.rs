//! The `embedeval` binary: makes OpenBLAS use kernels for this processor,
//! parses the command line, sets the allocator up
//! for a long-running server before any thread starts, and hands the command
//! to the library on a multi-threaded runtime.

use clap::Parser;

fn main() -> std::process::ExitCode {
    embedeval::blas::use_processor_kernels();
    let cli = embedeval::cli::Cli::parse();
    embedeval::use_ring_for_tls();
    if let embedeval::cli::Command::Serve(config) = &cli.command {
        embedeval::memory::limit_arenas(config.malloc_arenas);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("embedeval: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(embedeval::cli::main(cli)) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("embedeval: {}", embedeval::cli::describe(&err));
            std::process::ExitCode::FAILURE
        }
    }
}
