//! `gatehouse check-proxy URL`: an operator's self-test of the proxy in front of an
//! app. It asks the proxy for URL as a stranger who claims to be someone
//! (`X-Auth-User`, `Remote-User`, `X_Auth_User` set by the client) and, with
//! `--token`, as a logged-in user making the same claim, then reports:
//!
//! 1. whether an anonymous request is stopped (and sent to gatehouse's login page);
//! 2. whether the proxy forwards the original URL (`X-Original-URL`, or
//!    `X-Forwarded-Host/Uri`), seen as the `next` of that login redirect;
//! 3. whether the proxy keeps the client's query string away from `/auth`, where it
//!    would be read as rules (Caddy's `forward_auth` with a bare `uri /auth`);
//! 4. whether the proxy overwrites the client's identity headers — in every mix of
//!    `-` and `_` that CGI-style apps read as `X-Auth-User` — seen in what the app
//!    echoes back (any page that shows its request headers, such as httpbin's
//!    `/headers` or traefik/whoami);
//! 5. whether gatehouse's own cookies reach the app (they must not: the session
//!    token would let the app act as the user), while other cookies still do;
//! 6. whether the API token (`Authorization: Bearer …`) reaches the app (it must
//!    not, for the same reason).

use std::time::Duration;

use clap::Args;
use reqwest::StatusCode;
use url::Url;

/// `gatehouse check-proxy`: one line per check; fails when any check failed.
pub async fn run(args: CheckProxyArgs) -> anyhow::Result<()> {
    let findings = check(&args)
        .await
        .map_err(|err| anyhow::anyhow!("cannot reach {}: {err}", args.url))?;
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

/// `gatehouse health URL`: whether a gatehouse (or anything) answers there with
/// a success, within 3 s — for container health checks.
pub async fn health(url: Url) -> anyhow::Result<()> {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()?
        .get(url.clone())
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("{url} does not answer: {err}"))?;
    if !resp.status().is_success() {
        anyhow::bail!("{url} answered {}", resp.status());
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct CheckProxyArgs {
    /// A URL of an app behind the proxy, ideally one that echoes its request headers.
    pub url: Url,
    /// An API token (`gatehouse token create USER`) for the logged-in check.
    #[arg(long, env = "GATEHOUSE_CHECK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Connect to HOST at IP instead of asking DNS (like curl's --resolve), to check a
    /// proxy before DNS points at it. Repeatable.
    #[arg(long, value_name = "HOST=IP", value_parser = parse_resolve)]
    pub resolve: Vec<(String, std::net::IpAddr)>,
}

fn parse_resolve(raw: &str) -> Result<(String, std::net::IpAddr), String> {
    let (host, ip) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?}: expected HOST=IP"))?;
    let ip = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    Ok((host.to_ascii_lowercase(), ip))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// The check could not tell (the app does not echo headers, say).
    Unknown,
}

#[derive(Debug)]
pub struct Finding {
    pub outcome: Outcome,
    pub message: String,
}

impl Finding {
    fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            message: message.into(),
        }
    }
}

/// A value no real user has, so seeing it anywhere means it came from the client.
const SPOOFED_USER: &str = "check-proxy-spoofed-user";
const SPOOFED_HEADERS: [&str; 10] = [
    "X-Auth-User",
    "Remote-User",
    "X_Auth_User",
    "X-Auth_User",
    "X_Auth-User",
    "Remote_User",
    "X-Auth-Email",
    "X-Auth_Email",
    "X_Auth_Email",
    "Remote_Email",
];
/// Cookies in gatehouse's names, and one of the app's own, sent with `--token` (the
/// token is the identity then; gatehouse does not read these).
const GATEHOUSE_COOKIE_VALUE: &str = "check-proxy-gatehouse-cookie";
const APP_COOKIE: &str = "check_proxy_app_cookie=kept";

/// Runs every check against `args.url`.
pub async fn check(args: &CheckProxyArgs) -> Result<Vec<Finding>, reqwest::Error> {
    let mut client = reqwest::Client::builder()
        // The proxy under test, never one named in HTTP_PROXY.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    for (host, ip) in &args.resolve {
        client = client.resolve(host, std::net::SocketAddr::new(*ip, 0));
    }
    let client = client.build()?;
    let spoofed = |mut request: reqwest::RequestBuilder| {
        for name in SPOOFED_HEADERS {
            request = request.header(name, SPOOFED_USER);
        }
        request.header("accept", "text/html")
    };
    let mut findings = Vec::new();

    let anonymous = spoofed(client.get(args.url.clone())).send().await?;
    let status = anonymous.status();
    let location = anonymous
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = anonymous.text().await.unwrap_or_default();
    findings.push(anonymous_finding(status, &body));
    findings.push(original_url_finding(&args.url, status, location.as_deref()));

    let mut probe = args.url.clone();
    probe
        .query_pairs_mut()
        .append_pair("gatehouse_check_proxy", "1");
    let status = spoofed(client.get(probe)).send().await?.status();
    findings.push(query_finding(status));

    match &args.token {
        Some(token) => {
            let cookies = format!(
                "__Host-gatehouse_session={GATEHOUSE_COOKIE_VALUE}; \
                 gatehouse_session={GATEHOUSE_COOKIE_VALUE}; {APP_COOKIE}; \
                 gatehouse_csrf={GATEHOUSE_COOKIE_VALUE}"
            );
            let request = client
                .get(args.url.clone())
                .bearer_auth(token)
                .header("cookie", cookies);
            let resp = spoofed(request).send().await?;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            findings.push(overwrite_finding(status, &body));
            findings.push(cookie_finding(status, &body));
            findings.push(token_finding(status, &body, token));
        }
        None => {
            for check in [
                "identity headers overwritten",
                "gatehouse's cookies kept from the app",
                "gatehouse's API token kept from the app",
            ] {
                findings.push(Finding::new(
                    Outcome::Unknown,
                    format!("{check}: not checked (give --token to check as a logged-in user)"),
                ));
            }
        }
    }
    Ok(findings)
}

fn anonymous_finding(status: StatusCode, body: &str) -> Finding {
    if status.is_success() {
        let seen = if body.contains(SPOOFED_USER) {
            " and the app received the client's X-Auth-User"
        } else {
            ""
        };
        return Finding::new(
            Outcome::Fail,
            format!(
                "anonymous request stopped: NO — a stranger claiming X-Auth-User got {status}{seen}"
            ),
        );
    }
    if status.is_redirection() || status == StatusCode::UNAUTHORIZED {
        return Finding::new(
            Outcome::Pass,
            format!("anonymous request stopped: yes ({status})"),
        );
    }
    Finding::new(
        Outcome::Fail,
        format!(
            "anonymous request stopped: the proxy answered {status}; is gatehouse reachable from \
             the proxy and is /auth's query valid?"
        ),
    )
}

fn original_url_finding(url: &Url, status: StatusCode, location: Option<&str>) -> Finding {
    let Some(location) = location.filter(|_| status.is_redirection()) else {
        return Finding::new(
            Outcome::Fail,
            format!(
                "original URL forwarded: cannot tell — the anonymous request was not redirected \
                 to the login page ({status}); for nginx, add `error_page 401 =302 \
                 $auth_location` with `auth_request_set $auth_location $upstream_http_location`"
            ),
        );
    };
    let next = Url::parse(location).ok().and_then(|login| {
        login
            .query_pairs()
            .find(|(key, _)| key == "next")
            .map(|(_, value)| value.into_owned())
    });
    match next {
        Some(next) if Url::parse(&next).is_ok_and(|next| next == *url) => Finding::new(
            Outcome::Pass,
            format!("original URL forwarded: yes (login redirect returns to {next})"),
        ),
        Some(next) => Finding::new(
            Outcome::Fail,
            format!(
                "original URL forwarded: wrongly — the login redirect returns to {next}, not {url}"
            ),
        ),
        None => Finding::new(
            Outcome::Fail,
            format!(
                "original URL forwarded: NO — the login redirect ({location}) has no next. The \
                 proxy must send X-Original-URL (nginx) or X-Forwarded-Proto/Host/Uri \
                 (Caddy, Traefik), gatehouse must trust the proxy's address \
                 (--trusted-proxies), and the app's host must be allowed (--allowed-domains)"
            ),
        ),
    }
}

fn query_finding(status: StatusCode) -> Finding {
    if status.is_redirection() || status == StatusCode::UNAUTHORIZED {
        return Finding::new(
            Outcome::Pass,
            "client query kept from /auth: yes (a URL with an extra query is still redirected)",
        );
    }
    Finding::new(
        Outcome::Fail,
        format!(
            "client query kept from /auth: NO — with an extra query string the proxy answered \
             {status}; it passes the client's query on to /auth (Caddy: write `uri /auth?`)"
        ),
    )
}

fn overwrite_finding(status: StatusCode, body: &str) -> Finding {
    if !status.is_success() {
        return Finding::new(
            Outcome::Fail,
            format!(
                "identity headers overwritten: cannot tell — with --token the proxy answered {status}"
            ),
        );
    }
    if body.contains(SPOOFED_USER) {
        return Finding::new(
            Outcome::Fail,
            "identity headers overwritten: NO — the app received the client's spoofed identity \
             header; set X-Auth-User/Remote-User/X-Auth-Email from gatehouse's answer and remove \
             any the client sent",
        );
    }
    let seen_user = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            json.get("headers")?
                .as_object()?
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("x-auth-user"))
                .and_then(|(_, value)| value.as_str().map(str::to_owned))
        });
    match seen_user {
        Some(user) => Finding::new(
            Outcome::Pass,
            format!("identity headers overwritten: yes (the app saw X-Auth-User: {user})"),
        ),
        None => Finding::new(
            Outcome::Unknown,
            "identity headers overwritten: the client's value did not come back, but the app does \
             not echo its headers as JSON; point check-proxy at a URL that does",
        ),
    }
}

fn cookie_finding(status: StatusCode, body: &str) -> Finding {
    if !status.is_success() {
        return Finding::new(
            Outcome::Fail,
            format!(
                "gatehouse's cookies kept from the app: cannot tell — with --token the proxy \
                 answered {status}"
            ),
        );
    }
    if body.contains(GATEHOUSE_COOKIE_VALUE) {
        return Finding::new(
            Outcome::Fail,
            "gatehouse's cookies kept from the app: NO — the app received gatehouse's session \
             cookie, which it could replay as the user; pass the app the Cookie header of \
             gatehouse's /auth answer (nginx: auth_request_set $auth_cookie \
             $upstream_http_cookie; proxy_set_header Cookie $auth_cookie) or remove the \
             gatehouse_* cookies (see deploy/)",
        );
    }
    if body.contains(APP_COOKIE) {
        return Finding::new(
            Outcome::Pass,
            "gatehouse's cookies kept from the app: yes (the app's own cookies still arrive)",
        );
    }
    Finding::new(
        Outcome::Unknown,
        "gatehouse's cookies kept from the app: they did not come back, but neither did the \
         app's own cookie; point check-proxy at a URL that echoes its request headers",
    )
}

fn token_finding(status: StatusCode, body: &str, token: &str) -> Finding {
    if !status.is_success() {
        return Finding::new(
            Outcome::Fail,
            format!(
                "gatehouse's API token kept from the app: cannot tell — with --token the proxy \
                 answered {status}"
            ),
        );
    }
    if !token.is_empty() && body.contains(token) {
        return Finding::new(
            Outcome::Fail,
            "gatehouse's API token kept from the app: NO — the app received the request's \
             Authorization header with gatehouse's API token, which it could replay as the \
             user; pass the app the Authorization header of gatehouse's /auth answer (nginx: \
             auth_request_set $auth_authorization $upstream_http_authorization; \
             proxy_set_header Authorization $auth_authorization) or delete a gatehouse bearer \
             token from the request after the auth check (see deploy/)",
        );
    }
    let echoes_headers = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .is_some_and(|json| {
            json.get("headers")
                .is_some_and(serde_json::Value::is_object)
        });
    if echoes_headers {
        return Finding::new(
            Outcome::Pass,
            "gatehouse's API token kept from the app: yes",
        );
    }
    Finding::new(
        Outcome::Unknown,
        "gatehouse's API token kept from the app: it did not come back, but the app does not \
         echo its headers as JSON; point check-proxy at a URL that does",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_read_what_the_proxy_did() {
        let url = Url::parse("http://app.example.com/x?y=1").unwrap();
        assert_eq!(anonymous_finding(StatusCode::OK, "").outcome, Outcome::Fail);
        assert_eq!(
            anonymous_finding(StatusCode::FOUND, "").outcome,
            Outcome::Pass
        );
        assert_eq!(
            anonymous_finding(StatusCode::BAD_GATEWAY, "").outcome,
            Outcome::Fail
        );
        let good = "http://auth.example.com/login?next=http%3A%2F%2Fapp.example.com%2Fx%3Fy%3D1";
        assert_eq!(
            original_url_finding(&url, StatusCode::FOUND, Some(good)).outcome,
            Outcome::Pass
        );
        let bare = "http://auth.example.com/login";
        assert_eq!(
            original_url_finding(&url, StatusCode::FOUND, Some(bare)).outcome,
            Outcome::Fail
        );
        assert_eq!(
            overwrite_finding(StatusCode::OK, r#"{"headers":{"X-Auth-User":"alice"}}"#).outcome,
            Outcome::Pass
        );
        let leaked = format!(r#"{{"headers":{{"X-Auth-User":"{SPOOFED_USER}"}}}}"#);
        assert_eq!(
            overwrite_finding(StatusCode::OK, &leaked).outcome,
            Outcome::Fail
        );
        assert_eq!(
            overwrite_finding(StatusCode::OK, "<html>").outcome,
            Outcome::Unknown
        );
        let leaked = format!(
            r#"{{"headers":{{"cookie":"gatehouse_session={GATEHOUSE_COOKIE_VALUE}; {APP_COOKIE}"}}}}"#
        );
        assert_eq!(
            cookie_finding(StatusCode::OK, &leaked).outcome,
            Outcome::Fail
        );
        let kept = format!(r#"{{"headers":{{"cookie":"{APP_COOKIE}"}}}}"#);
        assert_eq!(cookie_finding(StatusCode::OK, &kept).outcome, Outcome::Pass);
        assert_eq!(
            cookie_finding(StatusCode::OK, "{}").outcome,
            Outcome::Unknown
        );
        let token = "gh_0123456789abcdef";
        let leaked = format!(r#"{{"headers":{{"authorization":"Bearer {token}"}}}}"#);
        assert_eq!(
            token_finding(StatusCode::OK, &leaked, token).outcome,
            Outcome::Fail
        );
        let kept = r#"{"headers":{"x-auth-user":"alice"}}"#;
        assert_eq!(
            token_finding(StatusCode::OK, kept, token).outcome,
            Outcome::Pass
        );
        assert_eq!(
            token_finding(StatusCode::OK, "<html>", token).outcome,
            Outcome::Unknown
        );
    }
}
