//! `surreal start …`: the official server's own entry point, as its `surreal`
//! binary calls it, with the community storage engines.
// As in surrealdb-server itself: the release build's deep async types need it.
#![recursion_limit = "256"]

use std::process::ExitCode;

fn main() -> ExitCode {
    surrealdb_server::init(surrealdb_core::CommunityComposer())
}
