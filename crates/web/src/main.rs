//! The `gatehouse` binary: parses the command line and hands over to the library.

use anyhow::Context;
use clap::Parser;
use domain::{HashParams, PasswordHasher};
use storage::Store;
use web::AppState;
use web::check_proxy::{CheckProxyArgs, Outcome};
use web::cli::{Cli, Command, DbArgs, SeedArgs, ServeArgs, TokenCommand, UserCommand};
use web::core::ClientInfo;
use web::core::tokens::{TokenFields, issue_token};
use web::seed::seed_file;

/// Stack for every runtime thread. The embedded SurrealDB runs queries on the
/// calling task's stack, and a debug build of its executor goes deeper than the
/// default 2 MiB on conditional upserts; release builds need far less. Only what
/// is touched is ever committed.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    match cli.command {
        // `gatehouse` alone is `gatehouse serve`: defaults, file and environment.
        None => serve(ServeArgs::default()).await,
        Some(Command::Serve(args)) => serve(*args).await,
        Some(Command::Seed(args)) => seed(args).await,
        Some(Command::Token(command)) => token(command).await,
        Some(Command::User(command)) => user(command).await,
        Some(Command::Health { url }) => health(url).await,
        Some(Command::CheckProxy(args)) => check_proxy(args).await,
        Some(Command::Openapi) => {
            println!("{}", web::api::spec());
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    if args.print_config {
        for (name, value) in config.describe() {
            println!("{name} = {value}");
        }
        return Ok(());
    }
    let store = Store::open(&config.db_url, config.db_credentials.as_ref()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        db = %redact_url(&config.db_url),
        public_url = %config.public_url,
        secure_cookies = config.secure_cookies(),
        "gatehouse listening on http://{addr}/"
    );
    let metrics = match config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?,
        ),
        None => None,
    };
    let state = AppState::new(store, config).await?;
    if let Some(listener) = metrics {
        tracing::info!(addr = %listener.local_addr()?, "metrics on http://{}/metrics", listener.local_addr()?);
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(err) = web::app::run_operator(listener, state, std::future::pending()).await
            {
                tracing::error!(error = %err, "the metrics listener stopped");
            }
        });
    }
    web::app::run(listener, state, shutdown_signal()).await?;
    tracing::info!("gatehouse stopped");
    Ok(())
}

async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let store = open_store(args.db.clone()).await?;
    let params = HashParams {
        log_n: args.scrypt_log_n.unwrap_or(HashParams::DEFAULT.log_n),
        ..HashParams::DEFAULT
    };
    let hasher = PasswordHasher::new(params)?;
    let report = seed_file(&store, &hasher, &args.file).await?;
    println!(
        "seeded {}: {} created, {} updated",
        args.file.display(),
        report.created,
        report.updated
    );
    Ok(())
}

async fn open_store(db: DbArgs) -> anyhow::Result<Store> {
    let (url, credentials) = db.resolve();
    Ok(Store::open(&url, credentials.as_ref()).await?)
}

/// The user `name` names, or an error saying there is none.
async fn existing_user(store: &Store, name: &str) -> anyhow::Result<domain::Username> {
    let username = domain::Username::parse(name)?;
    store
        .user_by_username(&username)
        .await?
        .with_context(|| format!("there is no user {username}"))?;
    Ok(username)
}

async fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            user,
            name,
            expires_in,
            db,
        } => {
            // The API's rules for names and lifetimes, not looser ones.
            let fields = TokenFields::check(&name, expires_in, "--name", "--expires-in").map_err(
                |errors| {
                    let messages: Vec<String> = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect();
                    anyhow::anyhow!(messages.join("; "))
                },
            )?;
            let store = open_store(db).await?;
            let username = existing_user(&store, &user).await?;
            let client = ClientInfo {
                address: Some("cli".to_owned()),
                user_agent: None,
            };
            let (token, info) = issue_token(&store, &client, &username, &fields).await?;
            eprintln!(
                "token {} for {username} (shown once; keep it secret):",
                info.id
            );
            println!("{}", token.expose());
        }
        TokenCommand::List { user, db } => {
            let store = open_store(db).await?;
            let username = existing_user(&store, &user).await?;
            for info in store.api_tokens_of(&username).await? {
                let expires = info
                    .expires_at
                    .map_or_else(|| "never".to_owned(), |at| at.to_string());
                let used = info
                    .last_used
                    .map_or_else(|| "never".to_owned(), |at| at.to_string());
                println!(
                    "{}  name={}  created={}  expires={expires}  last_used={used}",
                    info.id, info.name, info.created_at
                );
            }
        }
        TokenCommand::Revoke { user, id, db } => {
            let store = open_store(db).await?;
            let username = existing_user(&store, &user).await?;
            if !store.delete_api_token(&username, &id).await? {
                anyhow::bail!("{username} has no token {id}");
            }
            tracing::info!(event = "token_revoked", user = %username, token_id = %id);
            println!("revoked token {id}");
        }
    }
    Ok(())
}

async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Passwd {
            user,
            scrypt_log_n,
            db,
        } => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the new password from standard input")?;
            let line = line.strip_suffix('\n').unwrap_or(&line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            let password = domain::Password::parse(line)?;
            let store = open_store(db).await?;
            let username = existing_user(&store, &user).await?;
            let params = HashParams {
                log_n: scrypt_log_n.unwrap_or(HashParams::DEFAULT.log_n),
                ..HashParams::DEFAULT
            };
            let hash = PasswordHasher::new(params)?.hash(&password)?;
            let ended = store.change_password(&username, &hash, None).await?;
            tracing::info!(
                event = "password_changed",
                user = %username,
                via = "cli",
                sessions_revoked = ended.sessions,
                tokens_revoked = ended.tokens,
            );
            println!(
                "password of {username} changed; {} session(s) ended, {} API token(s) revoked",
                ended.sessions, ended.tokens
            );
        }
    }
    Ok(())
}

async fn health(url: url::Url) -> anyhow::Result<()> {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(3))
        .build()?
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("{url} does not answer"))?;
    if !resp.status().is_success() {
        anyhow::bail!("{url} answered {}", resp.status());
    }
    Ok(())
}

/// Prints one line per check; fails when any check failed.
async fn check_proxy(args: CheckProxyArgs) -> anyhow::Result<()> {
    let findings = web::check_proxy::check(&args)
        .await
        .with_context(|| format!("cannot reach {}", args.url))?;
    let mut failed = 0;
    for finding in &findings {
        let mark = match finding.outcome {
            Outcome::Pass => "ok  ",
            Outcome::Fail => {
                failed += 1;
                "FAIL"
            }
            Outcome::Unknown => "??  ",
        };
        println!("{mark} {}", finding.message);
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} proxy checks failed", findings.len());
    }
    Ok(())
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

/// Database URLs may carry credentials: never log them.
fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
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
