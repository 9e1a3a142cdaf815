/// Who is on the other end of a request, as the use cases record it (sessions,
/// audit events, throttling by address). Adapters build it; `core` never sees the
/// request itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address, behind trusted proxies; `None` when unknown.
    pub address: Option<String>,
    /// The `User-Agent`, cut to 256 characters.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The address for logs and throttle keys (`-` when unknown).
    pub fn address(&self) -> &str {
        self.address.as_deref().unwrap_or("-")
    }
}
