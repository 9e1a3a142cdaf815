//! `surreal start …`: the official server's own entry point, as its `surreal`
//! binary calls it, with the community storage engines.

use std::process::ExitCode;

fn main() -> ExitCode {
    surrealdb_server::init(surrealdb_core::CommunityComposer())
}
