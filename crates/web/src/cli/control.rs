//! The control socket: the commands beside a running server. The embedded store
//! allows one process per folder, so while `gatehouse serve` holds it the server
//! listens on `control.sock` in the data folder (mode 0600, and every peer's uid
//! checked with `SO_PEERCRED` against the server's own). A command that finds the
//! socket answering sends its command line there instead of opening the store;
//! the server runs the same command body, on its own services — so a change is
//! seen at once: its cache evicted, its sessions ended, its mail sent — and sends
//! back what the command printed. With no server (or on `ws://`, where every
//! process opens the store) commands open the store themselves.
//!
//! One request and one answer per connection, each a line of JSON:
//! `{"argv": […], "stdin": "…"}` → `{"stdout": "…", "stderr": "…", "error": …}`.

use std::cell::RefCell;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::Command;
use crate::core::Services;

/// The socket's name inside the data folder.
pub const SOCKET_NAME: &str = "control.sock";

/// The largest request read (a command line and one password).
const MAX_REQUEST: usize = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct Request {
    argv: Vec<String>,
    stdin: Option<String>,
    /// A backup rather than a command: the answer's `stdout` is the copy.
    #[serde(default)]
    backup: bool,
}

#[derive(Serialize, Deserialize, Default)]
struct Answer {
    stdout: String,
    stderr: String,
    error: Option<String>,
}

/// What a command body run for a peer writes into and reads from.
struct Peer {
    services: Services,
    stdout: String,
    stderr: String,
    stdin: Option<String>,
}

tokio::task_local! {
    static PEER: RefCell<Peer>;
}

/// The line a command read from standard input, kept in case the command is then
/// sent to the server (which asks for it again).
static STDIN_READ: Mutex<Option<String>> = Mutex::new(None);

/// The data folder of an embedded store's URL, `None` for any other store.
pub fn data_folder(db_url: &str) -> Option<PathBuf> {
    let path = db_url.strip_prefix("surrealkv://")?;
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// Prints a line of a command's answer: to standard output, or to the peer the
/// command runs for.
pub fn print_line(line: std::fmt::Arguments<'_>) {
    if !to_peer(line, |peer| &mut peer.stdout) {
        println!("{line}");
    }
}

/// [`print_line`] for standard error (counts and notes beside the answer).
pub fn print_note(line: std::fmt::Arguments<'_>) {
    if !to_peer(line, |peer| &mut peer.stderr) {
        eprintln!("{line}");
    }
}

/// Adds `line` to the peer's stream `pick`; false when no peer is served.
fn to_peer(line: std::fmt::Arguments<'_>, pick: fn(&mut Peer) -> &mut String) -> bool {
    PEER.try_with(|peer| {
        let mut peer = peer.borrow_mut();
        let stream = pick(&mut peer);
        stream.push_str(&line.to_string());
        stream.push('\n');
    })
    .is_ok()
}

/// The server's services when a command runs for a peer.
pub fn served() -> Option<Services> {
    PEER.try_with(|peer| peer.borrow().services.clone()).ok()
}

/// One line of standard input: the peer's, or this process's (kept for
/// [`forward`]).
pub fn stdin_line() -> anyhow::Result<String> {
    if let Ok(given) = PEER.try_with(|peer| peer.borrow_mut().stdin.take()) {
        return given.context("the command wants a line on standard input, and none came");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    *STDIN_READ.lock().unwrap_or_else(|e| e.into_inner()) = Some(line.clone());
    Ok(line)
}

/// A command that ran on the server: what it printed is printed here already.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.as_deref().unwrap_or("done by the running server"))]
pub struct Forwarded(pub Option<String>);

/// When a server is serving the store in `folder`, sends it this process's
/// command line and prints its answer; `Ok(None)` when no server answers there
/// (a command then opens the store itself).
pub async fn forward(folder: &Path) -> anyhow::Result<Option<Forwarded>> {
    let request = Request {
        argv: std::env::args().collect(),
        stdin: STDIN_READ.lock().unwrap_or_else(|e| e.into_inner()).take(),
        backup: false,
    };
    let Some(answer) = ask(folder, &request).await? else {
        return Ok(None);
    };
    print!("{}", answer.stdout);
    eprint!("{}", answer.stderr);
    Ok(Some(Forwarded(answer.error)))
}

/// A backup taken by the server serving the store in `folder`; `Ok(None)` when
/// no server answers there.
pub async fn backup(folder: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let request = Request {
        argv: Vec::new(),
        stdin: None,
        backup: true,
    };
    match ask(folder, &request).await? {
        None => Ok(None),
        Some(Answer {
            error: Some(error), ..
        }) => Err(anyhow::anyhow!(error)),
        Some(answer) => Ok(Some(answer.stdout.into_bytes())),
    }
}

/// `request`'s answer from the server on `folder`'s socket, or `None` when no
/// server listens there.
async fn ask(folder: &Path, request: &Request) -> anyhow::Result<Option<Answer>> {
    let socket = folder.join(SOCKET_NAME);
    let stream = match UnixStream::connect(&socket).await {
        Ok(stream) => stream,
        // No socket, or one left by a server that is gone: nobody serves here.
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(err) => {
            return Err(err).with_context(|| {
                format!(
                    "a server holds this store, and its control socket {} refused this \
                     user: run the command as the server's user",
                    socket.display()
                )
            });
        }
    };
    let answer = exchange(stream, request)
        .await
        .with_context(|| format!("the server at {} did not answer", socket.display()))?;
    Ok(Some(answer))
}

async fn exchange(stream: UnixStream, request: &Request) -> anyhow::Result<Answer> {
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.shutdown().await?;
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await?;
    anyhow::ensure!(
        !answer.is_empty(),
        "the connection closed without an answer"
    );
    Ok(serde_json::from_str(&answer)?)
}

/// The server's end: listens on `control.sock` in `folder` until dropped.
pub struct ControlSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens for commands on the store in `folder`, run with `services`. The
/// server holds the store's lock, so a socket already there is a dead server's.
pub fn listen(folder: &Path, services: Services) -> anyhow::Result<ControlSocket> {
    let path = folder.join(SOCKET_NAME);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err).with_context(|| format!("cannot remove the old {}", path.display()));
        }
    }
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} owner-only", path.display()))?;
    // The server's uid: the owner of the socket it just made.
    let owner = std::fs::metadata(&path)?.uid();
    let task = tokio::spawn(accept(listener, owner, services));
    Ok(ControlSocket { path, task })
}

async fn accept(listener: UnixListener, owner: u32, services: Services) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "control socket: cannot accept");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let services = services.clone();
        tokio::spawn(async move {
            if let Err(err) = answer(stream, owner, services).await {
                tracing::warn!(error = %err, "control socket: a command failed to arrive");
            }
        });
    }
}

async fn answer(stream: UnixStream, owner: u32, services: Services) -> anyhow::Result<()> {
    let uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    // The request is read whoever sent it (at most 64 KiB), so that a refused
    // peer reads its refusal rather than a closed connection.
    let mut line = Vec::new();
    let mut limited = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST as u64));
    limited.read_until(b'\n', &mut line).await?;
    let refused = |error: String| Answer {
        error: Some(error),
        ..Answer::default()
    };
    let reply = if uid != owner {
        tracing::warn!(uid, "control socket: a command from another user refused");
        refused(format!(
            "the control socket takes commands from the server's own user only (uid \
             {owner}), not uid {uid}"
        ))
    } else {
        match serde_json::from_slice::<Request>(&line) {
            Ok(request) if request.backup => backup_for_peer(uid, &services).await,
            Ok(request) => run_for_peer(request, uid, services).await,
            Err(err) => refused(format!("not a command: {err}")),
        }
    };
    let mut line = serde_json::to_vec(&reply)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    Ok(())
}

/// A backup taken here, for the peer to write.
async fn backup_for_peer(uid: u32, services: &Services) -> Answer {
    tracing::info!(uid, "control socket: a backup");
    let taken = crate::core::admin::Admin::cli(services).backup().await;
    match taken.map(String::from_utf8) {
        Ok(Ok(dump)) => Answer {
            stdout: dump,
            ..Answer::default()
        },
        Ok(Err(_)) => Answer {
            error: Some("the store's export is not UTF-8 text".into()),
            ..Answer::default()
        },
        Err(err) => Answer {
            error: Some(format!("the backup failed: {err}")),
            ..Answer::default()
        },
    }
}

/// Parses the peer's command line as `gatehouse` would, and runs it here.
async fn run_for_peer(request: Request, uid: u32, services: Services) -> Answer {
    use clap::Parser;
    let cli = match super::Cli::try_parse_from(&request.argv) {
        Ok(cli) => cli,
        Err(err) => {
            return Answer {
                error: Some(err.to_string()),
                ..Answer::default()
            };
        }
    };
    // The commands that act on accounts; the others either need the store to
    // themselves (`factors reseal`), read files beside the caller (`seed`), or do
    // not touch the store.
    let command = match cli.command {
        Some(command @ (Command::User(_) | Command::Token(_) | Command::Invite(_))) => command,
        _ => {
            return Answer {
                error: Some(
                    "a running server holds this store: this command cannot run beside it \
                     (`user`, `token` and `invite` can); stop the server first, or share a \
                     ws:// store"
                        .into(),
                ),
                ..Answer::default()
            };
        }
    };
    let words: Vec<&str> = request
        .argv
        .iter()
        .skip(1)
        .take(2)
        .map(String::as_str)
        .collect();
    tracing::info!(uid, command = %words.join(" "), "control socket: a command");
    let peer = RefCell::new(Peer {
        services,
        stdout: String::new(),
        stderr: String::new(),
        stdin: request.stdin,
    });
    let (result, peer) = PEER
        .scope(peer, async {
            let result = super::run_command(command).await;
            let peer = PEER.with(|peer| {
                let mut peer = peer.borrow_mut();
                (
                    std::mem::take(&mut peer.stdout),
                    std::mem::take(&mut peer.stderr),
                )
            });
            (result, peer)
        })
        .await;
    Answer {
        stdout: peer.0,
        stderr: peer.1,
        error: result.err().map(|err| format!("{err:#}")),
    }
}

/// Prints a line of a command's answer (see [`print_line`]).
macro_rules! say {
    ($($arg:tt)*) => { $crate::cli::control::print_line(format_args!($($arg)*)) };
}

/// Prints a note beside a command's answer (see [`print_note`]).
macro_rules! note {
    ($($arg:tt)*) => { $crate::cli::control::print_note(format_args!($($arg)*)) };
}

pub(crate) use {note, say};
