//! The `embedeval` command: `serve` runs the service; `health` asks a running
//! one whether it is SERVING (the container's HEALTHCHECK); `models`,
//! `datasets`, `embed`, `eval`, `compare` and `evaluations` are clients of a
//! running server.

pub mod args;
pub mod commands;
mod connection;
pub mod flags;
pub mod output;
mod records;
mod register;
mod render;

use clap::{Args, Parser, Subcommand};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::config::ServeConfig;

/// Evaluates contrastive image encoders over gRPC.
#[derive(Debug, Parser)]
#[command(name = "embedeval", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API.
    Serve(Box<ServeConfig>),
    /// Ask a server's grpc.health.v1 whether it is SERVING (exit 0) or not (exit 1).
    Health(HealthArgs),
    /// List, show, upload or remove models.
    Models {
        /// What to do.
        #[command(subcommand)]
        command: args::ModelsCommand,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
    /// List, show, upload or remove datasets.
    Datasets {
        /// What to do.
        #[command(subcommand)]
        command: args::DatasetsCommand,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
    /// Evaluate one model on a dataset.
    Eval {
        /// What to evaluate.
        #[command(flatten)]
        args: args::EvalArgs,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
    /// Evaluate several models on a dataset and compare them.
    Compare {
        /// What to compare (boxed: the largest arguments of any command).
        #[command(flatten)]
        args: Box<args::CompareArgs>,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
    /// List training runs, show one's path and warnings.
    Runs {
        /// What to do.
        #[command(subcommand)]
        command: args::RunsCommand,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
    /// Follow a training run: register and evaluate each ONNX checkpoint
    /// that appears in a folder, in step order, one table row each.
    Watch {
        /// What to watch.
        #[command(flatten)]
        args: args::WatchArgs,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
    /// Show a stored comparison.
    Comparisons {
        /// What to do.
        #[command(subcommand)]
        command: args::ComparisonsCommand,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
    /// Draw a figure of a stored comparison or evaluation (nothing is
    /// recomputed).
    Plot {
        /// What to draw.
        #[command(flatten)]
        args: args::PlotArgs,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
    /// List, show or cancel evaluations.
    Evaluations {
        /// What to do.
        #[command(subcommand)]
        command: args::EvaluationsCommand,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
    /// Embed a dataset split with a model into a .npy file.
    Embed {
        /// What to embed.
        #[command(flatten)]
        args: args::EmbedArgs,
        /// The server.
        #[command(flatten)]
        conn: args::Connection,
    },
}

/// Arguments of `embedeval health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Service to ask about ("" is the whole server).
    #[arg(long, default_value = "")]
    pub service: String,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
    /// The server, as every other command takes it.
    #[command(flatten)]
    pub conn: args::Connection,
}

/// An endpoint for `server`: plain for http://, TLS checked against
/// `ca_cert` for https://.
pub fn endpoint(
    server: &str,
    ca_cert: Option<&std::path::Path>,
) -> anyhow::Result<tonic::transport::Endpoint> {
    // `host:port`, as grpcurl takes it, means plain http.
    let server = if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    };
    let endpoint = tonic::transport::Endpoint::from_shared(server.clone())
        .map_err(|e| anyhow::anyhow!("--server {server:?}: {e}"))?;
    if !server.starts_with("https://") {
        return Ok(endpoint);
    }
    let Some(ca) = ca_cert else {
        anyhow::bail!("{server} uses TLS: pass --ca-cert with the CA that signed its certificate");
    };
    let pem = std::fs::read(ca).map_err(|e| anyhow::anyhow!("read {}: {e}", ca.display()))?;
    crate::use_ring_for_tls();
    Ok(endpoint.tls_config(
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
    )?)
}

/// Sets up logging: `RUST_LOG`-style filter from `EMBEDEVAL_LOG` (default
/// info), JSON lines when asked, colour only when stderr is a terminal (a
/// log written to a file or a pipe carries no escape codes; `NO_COLOR`
/// turns colour off on terminals too).
pub fn init_tracing(json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("EMBEDEVAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Asks the server's health service; returns its status.
pub async fn health(args: &HealthArgs) -> anyhow::Result<ServingStatus> {
    let timeout = std::time::Duration::from_secs(args.timeout);
    let channel = args.conn.channel_within(timeout).await?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await?;
    Ok(reply.into_inner().status())
}

/// An error as the command line says it: each cause after the context it
/// was given, a status from the server as its code and message
/// (`InvalidArgument: …`), never tonic's debug form, the settings it names
/// as the flags that set them ([`flags::as_flags`]).
pub fn describe(err: &anyhow::Error) -> String {
    let text = err
        .chain()
        .map(|e| match e.downcast_ref::<tonic::Status>() {
            Some(status) => format!("{:?}: {}", status.code(), status.message()),
            None => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ");
    flags::as_flags(&text)
}

/// Runs the command line; returns the process exit code.
pub async fn main(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(config) => {
            init_tracing(config.log_json);
            crate::server::run(*config).await?;
            Ok(0)
        }
        Command::Models { command, conn } => commands::models(&conn, command).await.map(|_| 0),
        Command::Datasets { command, conn } => commands::datasets(&conn, command).await.map(|_| 0),
        Command::Embed { args, conn } => commands::embed(&conn, args).await.map(|_| 0),
        Command::Eval { args, conn } => commands::eval(&conn, args).await.map(|_| 0),
        Command::Compare { args, conn } => commands::compare(&conn, *args).await.map(|_| 0),
        Command::Comparisons { command, conn } => {
            commands::comparisons(&conn, command).await.map(|_| 0)
        }
        Command::Plot { args, conn } => commands::plot(&conn, args).await.map(|_| 0),
        Command::Runs { command, conn } => commands::runs(&conn, command).await.map(|_| 0),
        Command::Watch { args, conn } => commands::watch(&conn, args).await,
        Command::Evaluations { command, conn } => {
            commands::evaluations(&conn, command).await.map(|_| 0)
        }
        Command::Health(args) => {
            let status = health(&args).await?;
            println!("{}", status.as_str_name());
            Ok(if status == ServingStatus::Serving {
                0
            } else {
                1
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_server_may_be_given_as_host_and_port() {
        let e = super::endpoint("127.0.0.1:50051", None).unwrap();
        assert_eq!(e.uri().to_string(), "http://127.0.0.1:50051/");
        let e = super::endpoint("http://localhost:1", None).unwrap();
        assert_eq!(e.uri().scheme_str(), Some("http"));
        assert!(
            super::endpoint("https://localhost:1", None).is_err(),
            "TLS needs --ca-cert"
        );
    }
}
