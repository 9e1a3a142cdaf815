//! The `gatehouse` binary: parses the command line and hands over to the library.

use anyhow::Context;
use clap::Parser;
use domain::{HashParams, PasswordHasher};
use secrecy::ExposeSecret;
use storage::Store;
use web::AppState;
use web::check_proxy::{CheckProxyArgs, Outcome};
use web::cli::{
    Cli, Command, DbArgs, FactorsCommand, GroupChange, InviteCommand, SeedArgs, ServeArgs,
    TokenCommand, UserCommand,
};
use web::core::ClientInfo;
use web::core::admin::{self, Admin, GroupEdit, InvitationFields, group_list};
use web::core::seal::{self, FactorSeal};
use web::core::tokens::{TokenFields, TokenLogin, issue_token};
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
        Some(Command::Invite(command)) => invite(command).await,
        Some(Command::Factors(command)) => factors(command).await,
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
    // The state first: what it refuses (second-factor secrets sealed under another
    // key, say) is said before anything claims to listen.
    let state = AppState::new(store, config).await?;
    let config = &state.config;
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

async fn factors(command: FactorsCommand) -> anyhow::Result<()> {
    let FactorsCommand::Reseal {
        secret_key_file,
        old_secret_key_file,
        db,
    } = command;
    let new = web::cli::secret_key_from(secret_key_file.as_deref(), "GATEHOUSE_SECRET_KEY")?
        .context("give the new key: GATEHOUSE_SECRET_KEY or --secret-key-file")?;
    let old =
        web::cli::secret_key_from(old_secret_key_file.as_deref(), "GATEHOUSE_OLD_SECRET_KEY")?;
    let store = open_store(db).await?;
    let new = FactorSeal::from_secret(new.expose_secret().as_bytes(), true);
    let old = match old {
        Some(old) => FactorSeal::from_secret(old.expose_secret().as_bytes(), true),
        // A development gatehouse sealed them under the key it kept in its store.
        None => {
            FactorSeal::from_secret(store.shared_secret("factor_seal").await?.as_bytes(), false)
        }
    };
    match seal::reseal(&store, Some(&old), &new).await? {
        Ok(done) => {
            tracing::info!(
                event = "factors_resealed",
                moved = done.moved,
                current = done.current,
                key = new.id()
            );
            println!(
                "{} secret(s) sealed under the new key (id {}), {} already were",
                done.moved,
                new.id(),
                done.current
            );
            Ok(())
        }
        Err(stuck) => anyhow::bail!(stuck),
    }
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
            let (token, info) = issue_token(
                &store,
                &client,
                &username,
                &fields,
                TokenLogin {
                    factors: Vec::new(),
                    authenticated_at: storage::now(),
                },
            )
            .await?;
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

/// One line of standard input, without its line ending.
fn password_from_stdin() -> anyhow::Result<domain::Password> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(domain::Password::parse(line)?)
}

async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Passwd {
            user,
            scrypt_log_n,
            db,
        } => {
            let password = password_from_stdin()?;
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
        UserCommand::Add {
            user,
            email,
            name,
            admin,
            groups,
            scrypt_log_n,
            admin_group,
            db,
        } => {
            let username = domain::Username::parse(&user)?;
            let email = domain::Email::parse(&email)?;
            let name = domain::DisplayName::parse(&name)?;
            let mut groups = domain::GroupName::parse_list(&groups)?;
            if admin {
                groups.push(admin_group.group()?);
                groups.sort();
                groups.dedup();
            }
            let password = password_from_stdin()?;
            let params = HashParams {
                log_n: scrypt_log_n.unwrap_or(HashParams::DEFAULT.log_n),
                ..HashParams::DEFAULT
            };
            let user = domain::User {
                password_hash: PasswordHasher::new(params)?.hash(&password)?,
                username,
                email,
                name,
                created_at: storage::now(),
                groups,
                disabled: false,
                email_verified: true,
            };
            let store = open_store(db).await?;
            store.create_user(&user).await?;
            let groups = group_list(&user.groups);
            tracing::info!(event = "user_added", user = %user.username, groups, via = "cli");
            println!(
                "added {} ({}) in groups [{groups}]",
                user.username, user.email
            );
        }
        UserCommand::List { search, db } => {
            let store = open_store(db).await?;
            let admins = web::config::default_admin_group();
            let admin = Admin::cli(&store, &admins);
            let mut query = storage::UserQuery {
                search,
                from: storage::Cursor::Start,
                limit: 500,
            };
            let mut shown = 0;
            loop {
                let page = admin.users(&query).await?;
                for user in &page.users {
                    println!(
                        "{}\t{}\t[{}]{}",
                        user.username,
                        user.email,
                        group_list(&user.groups),
                        if user.disabled { "\tdisabled" } else { "" }
                    );
                }
                shown += page.users.len();
                match page.users.last() {
                    Some(last) if page.has_next => {
                        query.from = storage::Cursor::After(last.username.to_string());
                    }
                    _ => break,
                }
            }
            eprintln!("{shown} user(s)");
        }
        UserCommand::Show {
            user,
            admin_group,
            db,
        } => {
            let store = open_store(db).await?;
            let admins = admin_group.group()?;
            let admin = Admin::cli(&store, &admins);
            let username = domain::Username::parse(&user)?;
            let access = admin
                .access_of(&username)
                .await?
                .with_context(|| format!("there is no user {username}"))?;
            let user = &access.user;
            println!("username\t{}", user.username);
            println!("email\t{}", user.email);
            println!("email_verified\t{}", user.email_verified);
            println!("name\t{}", user.name.as_ref().map_or("", |n| n.as_str()));
            println!("groups\t[{}]", group_list(&user.groups));
            println!("disabled\t{}", user.disabled);
            println!("created\t{}", user.created_at);
            let totp = store
                .totp(&user.username)
                .await?
                .is_some_and(|t| t.confirmed);
            println!("totp\t{totp}");
            for passkey in store.passkeys(&user.username).await? {
                println!(
                    "passkey\t{}\t{}\tadded {}\tlast used {}",
                    &passkey.id[..16],
                    passkey.name,
                    passkey.created_at,
                    passkey
                        .last_used_at
                        .map_or("never".to_owned(), |t| t.to_string())
                );
            }
            for session in &access.sessions {
                println!(
                    "session\t{}\t{}\t{}\tlast seen {}",
                    &session.id[..16],
                    session.address.as_deref().unwrap_or("-"),
                    web::core::sessions::describe_browser(session.user_agent.as_deref()),
                    session.last_seen
                );
            }
            for token in &access.tokens {
                println!("token\t{}\t{}", token.id, token.name);
            }
        }
        UserCommand::Disable {
            user,
            admin_group,
            db,
        } => set_disabled(&user, true, &admin_group, db).await?,
        UserCommand::Enable {
            user,
            admin_group,
            db,
        } => set_disabled(&user, false, &admin_group, db).await?,
        UserCommand::Delete {
            user,
            admin_group,
            db,
        } => {
            let (store, admins, username) = cli_target(&user, &admin_group, db).await?;
            let ended = Admin::cli(&store, &admins)
                .delete(&username)
                .await?
                .with_context(|| format!("there is no user {username}"))?;
            println!(
                "deleted {username}; {} session(s) ended, {} API token(s) revoked",
                ended.sessions, ended.tokens
            );
        }
        UserCommand::ResetFactors {
            user,
            admin_group,
            db,
        } => {
            let (store, admins, username) = cli_target(&user, &admin_group, db).await?;
            let ended = Admin::cli(&store, &admins)
                .reset_factors(&username)
                .await?
                .with_context(|| format!("there is no user {username}"))?;
            println!(
                "second factors of {username} removed (authenticator app, recovery codes, passkeys); {} session(s) ended, {} API token(s) revoked",
                ended.sessions, ended.tokens
            );
        }
        UserCommand::Reset {
            user,
            admin_group,
            db,
        } => {
            let (store, admins, username) = cli_target(&user, &admin_group, db).await?;
            Admin::cli(&store, &admins)
                .queueing_mail()
                .start_reset(&username)
                .await?
                .with_context(|| format!("there is no user {username}"))?;
            println!("reset link for {username} queued: the server sends it if it has mail");
        }
        UserCommand::SendVerification {
            user,
            admin_group,
            db,
        } => {
            let (store, admins, username) = cli_target(&user, &admin_group, db).await?;
            let queued = Admin::cli(&store, &admins)
                .queueing_mail()
                .send_verification(&username)
                .await?
                .with_context(|| format!("there is no user {username}"))?;
            anyhow::ensure!(queued, "the address of {username} is verified already");
            println!("verification link for {username} queued: the server sends it if it has mail");
        }
        UserCommand::VerifyEmail {
            user: None,
            admin_group,
            db,
            ..
        } => {
            let store = open_store(db).await?;
            let admins = admin_group.group()?;
            let count = Admin::cli(&store, &admins).verify_all_emails().await?;
            println!("{count} address(es) marked verified");
        }
        UserCommand::VerifyEmail {
            user: Some(user),
            no,
            admin_group,
            db,
            ..
        } => {
            let (store, admins, username) = cli_target(&user, &admin_group, db).await?;
            Admin::cli(&store, &admins)
                .set_email_verified(&username, !no)
                .await?
                .with_context(|| format!("there is no user {username}"))?;
            let state = if no { "not verified" } else { "verified" };
            println!("the address of {username} is now {state}");
        }
        UserCommand::Groups {
            user,
            change,
            group,
            admin_group,
            db,
        } => {
            let store = open_store(db).await?;
            let admins = admin_group.group()?;
            let group = domain::GroupName::parse(&group)?;
            let username = domain::Username::parse(&user)?;
            let edit = match change {
                GroupChange::Add => GroupEdit::Add(group),
                GroupChange::Remove => GroupEdit::Remove(group),
            };
            let user = Admin::cli(&store, &admins)
                .edit_groups(&username, edit)
                .await?
                .with_context(|| format!("there is no user {username}"))?;
            println!("{username} is in groups [{}]", group_list(&user.groups));
        }
    }
    Ok(())
}

/// The store, the admins' group and the user a `gatehouse user …` command acts on.
async fn cli_target(
    user: &str,
    admin_group: &web::cli::AdminGroupArg,
    db: DbArgs,
) -> anyhow::Result<(storage::Store, domain::GroupName, domain::Username)> {
    let store = open_store(db).await?;
    let admins = admin_group.group()?;
    let username = domain::Username::parse(user)?;
    Ok((store, admins, username))
}

async fn set_disabled(
    user: &str,
    disabled: bool,
    admin_group: &web::cli::AdminGroupArg,
    db: DbArgs,
) -> anyhow::Result<()> {
    let (store, admins, username) = cli_target(user, admin_group, db).await?;
    let ended = Admin::cli(&store, &admins)
        .set_disabled(&username, disabled)
        .await?
        .with_context(|| format!("there is no user {username}"))?;
    if disabled {
        println!(
            "disabled {username}; {} session(s) ended, {} API token(s) revoked",
            ended.sessions, ended.tokens
        );
    } else {
        println!("enabled {username}");
    }
    Ok(())
}

async fn invite(command: InviteCommand) -> anyhow::Result<()> {
    let admins = web::config::default_admin_group();
    match command {
        InviteCommand::Create {
            email,
            groups,
            expires_in,
            public_url,
            db,
        } => {
            let fields = InvitationFields::check(
                email.as_deref(),
                admin::groups_from_list(&groups),
                Some(expires_in),
            )
            .map_err(|errors| {
                anyhow::anyhow!(
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            })?;
            let store = open_store(db).await?;
            let (token, invitation) = Admin::cli(&store, &admins).invite(fields).await?;
            println!("{}", admin::invitation_link(&public_url, &token));
            eprintln!(
                "invitation {} (single use, expires in {expires_in} s)",
                invitation.id
            );
        }
        InviteCommand::List { db } => {
            let store = open_store(db).await?;
            let now = storage::now();
            for invitation in Admin::cli(&store, &admins).invitations().await? {
                println!(
                    "{}\t{}\t[{}]\t{}",
                    invitation.id,
                    invitation
                        .email
                        .as_ref()
                        .map_or("(any email)", domain::Email::as_str),
                    group_list(&invitation.groups),
                    if invitation.is_live(now) {
                        format!("expires in {} s", invitation.expires_at - now)
                    } else {
                        "expired".to_owned()
                    }
                );
            }
        }
        InviteCommand::Revoke { id, db } => {
            let store = open_store(db).await?;
            if !Admin::cli(&store, &admins).revoke_invitation(&id).await? {
                anyhow::bail!("there is no invitation {id}");
            }
            println!("revoked invitation {id}");
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
