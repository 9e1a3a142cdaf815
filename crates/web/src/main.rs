//! The `gatehouse` binary: the runtime, the logs, the command line handed to
//! [`web::cli::run`], and the signals that stop `serve`.

use clap::Parser;

/// Stack for every runtime thread. The embedded SurrealDB runs queries on the
/// calling task's stack, and a debug build of its executor goes deeper than the
/// default 2 MiB on conditional upserts; release builds need far less. Only what
/// is touched is ever committed.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// A failed command is one sentence on standard error (its causes after colons)
/// and exit status 1 — never a backtrace, whatever `RUST_BACKTRACE` says.
fn main() -> std::process::ExitCode {
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                init_logging();
                web::cli::run(web::cli::Cli::parse(), shutdown_signal()).await
            })
        });
    match ran {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Human-readable logs by default; `GATEHOUSE_LOG_FORMAT=json` for JSON lines.
/// `RUST_LOG` filters (default `info`, SurrealDB at `warn`).
fn init_logging() {
    use std::io::IsTerminal;
    // SurrealDB's start-up chatter is not what an operator needs to read.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,surrealdb=warn,surrealkv=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var("GATEHOUSE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
