//! `gatehouse serve`: the settings checked, the state built, then listening.

use std::future::Future;

use anyhow::Context;

use super::Settings;
use crate::AppState;
use crate::core::Services;

pub async fn serve(
    args: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let given = args.merged()?;
    let config = given.clone().check()?;
    if args.print_config {
        print!("{}", super::printed::print_config(&config, &given)?);
        return Ok(());
    }
    // The state first: what it refuses (second-factor secrets sealed under another
    // key, say) is said before anything claims to listen.
    let state = AppState::open(config).await?;
    let config = &state.config;
    // The commands beside the server, on the embedded store it holds (kept
    // until the server stops, which removes the socket).
    let _control = match super::control::data_folder(&config.db_url) {
        Some(folder) => Some(super::control::listen(&folder, Services::clone(&state))?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        db = %super::redact_url(&config.db_url),
        public_url = %config.public_url,
        secure_cookies = config.secure_cookies(),
        "gatehouse listening on http://{addr}/"
    );
    if let Some(addr) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
        let bound = listener.local_addr()?;
        tracing::info!(addr = %bound, "metrics on http://{bound}/metrics");
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(err) =
                crate::app::run_operator(listener, state, std::future::pending()).await
            {
                tracing::error!(error = %err, "the metrics listener stopped");
            }
        });
    }
    crate::app::run(listener, state, shutdown).await?;
    tracing::info!("gatehouse stopped");
    Ok(())
}
