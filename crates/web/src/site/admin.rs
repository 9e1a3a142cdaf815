//! `/admin/users`: the admins' page — users (search, keyset paging, disable and
//! enable, groups, end every session and token, delete after a confirmation page)
//! and invitations (make one and see its link once, revoke). Every change is a
//! plain form with the CSRF field: without JavaScript it posts and comes back here
//! with `303`; with htmx the row (or the invitations section) is swapped in place,
//! and the search and the pager swap the table. Anyone logged in who is not an
//! admin gets 403; a visitor goes to the login page. The operations and their
//! audit events are `core::admin`'s, as in the API and the CLI.

use crate::core::records::{AccessEnded, Cursor, Invitation, UserPage, UserQuery};
use domain::{User, Username};
use maud::{Markup, Render, html};
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Body, Request, Response, handler};
use serde::Deserialize;

use super::View;
use super::error::{WebError, require_login};
use super::user::date_time;
use super::{CsrfField, SubmitButton, is_htmx};
use crate::core::admin::{
    Admin, DEFAULT_INVITATION_LIFETIME, Door, GroupEdit, GroupsError, InvitationFields, PAGE_SIZE,
    group_list, groups_from_list, invitation_link,
};
use crate::http::AppState;
use crate::http::form::read_form;
use crate::http::identity::client_info;

pub const PATH: &str = "/admin/users";
const INVITATIONS_PATH: &str = "/admin/invitations";

/// `?q=…&after=…` or `&before=…`: the search and where the page starts.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

impl ListQuery {
    fn search(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    fn cursor(&self) -> Cursor {
        match (&self.after, &self.before) {
            (Some(after), _) => Cursor::After(after.clone()),
            (None, Some(before)) => Cursor::Before(before.clone()),
            (None, None) => Cursor::Start,
        }
    }

    /// This page's address, which the row forms carry to come back to.
    fn here(&self) -> String {
        list_url(self.search(), &self.cursor())
    }
}

fn list_url(search: Option<&str>, cursor: &Cursor) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    if let Some(q) = search {
        url.append_pair("q", q);
    }
    match cursor {
        Cursor::Start => {}
        Cursor::After(name) => {
            url.append_pair("after", name);
        }
        Cursor::Before(name) => {
            url.append_pair("before", name);
        }
    }
    let query = url.finish();
    if query.is_empty() {
        PATH.to_owned()
    } else {
        format!("{PATH}?{query}")
    }
}

/// Where a row form sends the browser back to: its `back` field when it is this
/// page (with any query), else the first page.
fn back_to(back: Option<&str>) -> String {
    match back {
        Some(back)
            if (back == PATH || back.starts_with(&format!("{PATH}?")))
                && !back.contains(['\\', '\r', '\n', '#']) =>
        {
            back.to_owned()
        }
        _ => PATH.to_owned(),
    }
}

/// The logged-in admin, or the login page (visitors) or 403 (anyone else).
fn require_admin<'a>(req: &'a Request, state: &'a AppState) -> Result<Admin<'a>, WebError> {
    let me = require_login(req)?;
    Admin::of(state, me, Door::Page, &client_info(req, state)).ok_or(WebError::AdminsOnly)
}

fn username(raw: &str) -> Result<Username, WebError> {
    Username::parse(raw).map_err(|_| WebError::NotFound)
}

fn user_row(admin: &Admin<'_>, user: &User, csrf: &str, back: &str, note: Option<&str>) -> Markup {
    let name = user.username.as_str();
    let action = |what: &str| format!("{PATH}/{name}/{what}");
    let is_admin = admin.is_admin(user);
    html! {
        tr id={ "user-" (name) } {
            td {
                a href={ "/user/" (name) } { (name) }
                @if is_admin { " " span.badge { "admin" } }
                @if let Some(display) = &user.name { br; small.muted { (display.as_str()) } }
            }
            td {
                (user.email.as_str())
                @if !user.email_verified { br; small.muted { "not verified" } }
            }
            td {
                form.groups method="post" action=(action("groups"))
                    hx-post=(action("groups")) hx-target="closest tr" hx-swap="outerHTML"
                    hx-disabled-elt="find button" {
                    (CsrfField(csrf))
                    input type="hidden" name="back" value=(back);
                    input type="text" name="groups" value=(group_list(&user.groups).replace(',', ", "))
                        aria-label={ "Groups of " (name) } placeholder="no groups" size="14";
                    " "
                    button.link type="submit" { "Save" }
                }
            }
            td {
                @if user.disabled { span.badge.off { "disabled" } } @else { "active" }
                @if let Some(note) = note { br; small.ok role="status" { (note) } }
            }
            td.actions {
                @let (toggle, label) = if user.disabled { ("enable", "Enable") } else { ("disable", "Disable") };
                (RowButton { action: &action(toggle), csrf, back, label, title: None })
                " · "
                (RowButton { action: &action("revoke"), csrf, back, label: "End sessions", title: None })
                " · "
                (RowButton { action: &action("factors"), csrf, back, label: "Reset 2FA", title: Some("For a lost phone or key: removes the authenticator app, recovery codes and passkeys and ends every session") })
                @if admin.sends_mail() {
                    " · "
                    (RowButton { action: &action("reset"), csrf, back, label: "Mail a reset link", title: None })
                    @if !user.email_verified {
                        " · "
                        (RowButton { action: &action("verification"), csrf, back, label: "Mail a verification link", title: None })
                    }
                }
                " · "
                a href={ (action("delete")) "?back=" (urlencode(back)) } { "Delete…" }
            }
        }
    }
}

/// One button of a user's row: a form that posts to `action` (and, with htmx,
/// swaps the row for the answer).
struct RowButton<'a> {
    action: &'a str,
    csrf: &'a str,
    back: &'a str,
    label: &'a str,
    title: Option<&'a str>,
}

impl Render for RowButton<'_> {
    fn render(&self) -> Markup {
        html! {
            form.inline method="post" action=(self.action)
                hx-post=(self.action) hx-target="closest tr" hx-swap="outerHTML"
                hx-disabled-elt="find button" {
                (CsrfField(self.csrf))
                input type="hidden" name="back" value=(self.back);
                button.link type="submit" title=[self.title] { (self.label) }
            }
        }
    }
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The table and its pager: what the search and the pager swap.
fn users_fragment(
    admin: &Admin<'_>,
    query: &ListQuery,
    page: &UserPage,
    total: u64,
    csrf: &str,
) -> Markup {
    let here = query.here();
    let search = query.search();
    html! {
        div #users {
            p.muted {
                (total) " users in all"
                @if let Some(q) = search { "; showing those starting with “" (q) "”" }
                "."
            }
            @if page.users.is_empty() {
                p { "No users found." }
            } @else {
                table.sessions.users {
                    thead { tr { th { "User" } th { "Email" } th { "Groups" } th { "Status" } th {} } }
                    tbody {
                        @for user in &page.users {
                            (user_row(admin, user, csrf, &here, None))
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if let (true, Some(first)) = (page.has_previous, page.users.first()) {
                    @let url = list_url(search, &Cursor::Before(first.username.to_string()));
                    a rel="prev" href=(url) hx-get=(url) hx-target="#users" hx-swap="outerHTML"
                        hx-push-url="true" { "← Previous" }
                }
                " "
                @if let (true, Some(last)) = (page.has_next, page.users.last()) {
                    @let url = list_url(search, &Cursor::After(last.username.to_string()));
                    a rel="next" href=(url) hx-get=(url) hx-target="#users" hx-swap="outerHTML"
                        hx-push-url="true" { "Next →" }
                }
            }
        }
    }
}

fn invitations_section(
    invitations: &[Invitation],
    csrf: &str,
    new_link: Option<&str>,
    errors: &super::FieldErrors,
) -> Markup {
    let now = crate::core::records::now();
    let lifetimes = [
        (86_400, "1 day"),
        (DEFAULT_INVITATION_LIFETIME, "7 days"),
        (30 * 86_400, "30 days"),
    ];
    html! {
        section.card.wide #invitations {
            h2 { "Invitations" }
            @if let Some(link) = new_link {
                div.ok role="status" {
                    p { "Send this sign-up link to the invitee. It works once and is shown only now:" }
                    input #invitation-link type="text" readonly value=(link) aria-label="Invitation link" size="60";
                }
            }
            form method="post" action=(INVITATIONS_PATH) hx-post=(INVITATIONS_PATH)
                hx-target="#invitations" hx-swap="outerHTML" hx-disabled-elt="find button" {
                (CsrfField(csrf))
                (super::Field { name: "email", label: "Email (optional: the account must use it)",
                    kind: "email", value: "", autocomplete: "off", required: false,
                    error: errors.get("email"), validate: None })
                (super::Field { name: "groups", label: "Groups (comma-separated)",
                    kind: "text", value: "", autocomplete: "off", required: false,
                    error: errors.get("groups"), validate: None })
                div.field {
                    label for="field-expires_in" { "Valid for" }
                    select #field-expires_in name="expires_in" {
                        @for (seconds, label) in lifetimes {
                            option value=(seconds) selected[seconds == DEFAULT_INVITATION_LIFETIME] { (label) }
                        }
                    }
                    @if let Some(error) = errors.get("expires_in") { p.error.hint { (error) } }
                }
                (SubmitButton("Make an invitation link"))
            }
            @if invitations.is_empty() {
                p.muted { "No open invitations." }
            } @else {
                table.sessions {
                    thead { tr { th { "For" } th { "Groups" } th { "Made by" } th { "Expires" } th {} } }
                    tbody {
                        @for invitation in invitations {
                            @let revoke_url = format!("{INVITATIONS_PATH}/{}/revoke", invitation.id);
                            tr id={ "invitation-" (&invitation.id[..16.min(invitation.id.len())]) } {
                                td { (invitation.email.as_ref().map_or("anyone", |e| e.as_str())) }
                                td { (group_list(&invitation.groups)) }
                                td { (invitation.created_by.as_deref().unwrap_or("—")) }
                                td {
                                    @if invitation.is_live(now) { (date_time(invitation.expires_at)) }
                                    @else { span.badge.off { "expired" } }
                                }
                                td {
                                    form.inline method="post" action=(revoke_url) hx-post=(revoke_url)
                                        hx-target="closest tr" hx-swap="outerHTML"
                                        hx-disabled-elt="find button" {
                                        (CsrfField(csrf))
                                        button.link type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The whole page (or, for htmx, the users table alone).
async fn render(
    req: &Request,
    admin: &Admin<'_>,
    query: &ListQuery,
    status: StatusCode,
    new_link: Option<&str>,
    invitation_errors: &super::FieldErrors,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let page = admin
        .users(&UserQuery {
            search: query.search().map(str::to_owned),
            from: query.cursor(),
            limit: PAGE_SIZE,
        })
        .await?;
    let total = admin.count_users().await?;
    let csrf = view.csrf;
    let fragment = users_fragment(admin, query, &page, total, csrf);
    if is_htmx(req) {
        return Ok(super::respond(&view, status, "Users", fragment, |f| f));
    }
    let invitations = admin.invitations().await?;
    let search = query.search().unwrap_or_default();
    let content = html! {
        section.card.wide {
            h1 { "Users" }
            form.search role="search" method="get" action=(PATH)
                hx-get=(PATH) hx-target="#users" hx-swap="outerHTML" hx-push-url="true"
                hx-trigger="input changed delay:300ms from:find input, submit" {
                label for="field-q" { "Find users whose username or email starts with" }
                " "
                input #field-q type="search" name="q" value=(search) autocomplete="off";
                " "
                button type="submit" { "Search" }
            }
            (fragment)
        }
        (invitations_section(&invitations, csrf, new_link, invitation_errors))
    };
    Ok(super::page(&view, status, "Users", content))
}

#[handler]
pub async fn get(
    req: &Request,
    Query(query): Query<ListQuery>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let admin = require_admin(req, state)?;
    render(
        req,
        &admin,
        &query,
        StatusCode::OK,
        None,
        &super::FieldErrors::default(),
    )
    .await
}

/// After a change to one user: htmx gets the row again, a plain form goes back.
async fn after_change(
    req: &Request,
    admin: &Admin<'_>,
    username: &Username,
    back: &str,
    note: Option<&str>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    if !is_htmx(req) {
        return Ok(super::see_other(back));
    }
    let user = admin.user(username).await?.ok_or(WebError::NotFound)?;
    let row = user_row(admin, &user, view.csrf, back, note);
    Ok(super::respond(&view, StatusCode::OK, "Users", row, |r| r))
}

fn ended_note(ended: AccessEnded) -> String {
    format!(
        "{} session(s) ended, {} token(s) revoked",
        ended.sessions, ended.tokens
    )
}

/// The one-button changes of a user's row.
#[derive(Debug, Clone, Copy)]
enum RowChange {
    Disable,
    Enable,
    /// Ends every session and token of the user.
    EndAccess,
    /// Removes the second factors and ends the sessions and tokens.
    ResetFactors,
    /// Mails the user a password-reset link.
    MailReset,
    /// Mails the user a new verification link.
    MailVerification,
}

impl RowChange {
    /// The last segment of each change's path, as the row's forms post them.
    const PATHS: [(&'static str, Self); 6] = [
        ("disable", Self::Disable),
        ("enable", Self::Enable),
        ("revoke", Self::EndAccess),
        ("factors", Self::ResetFactors),
        ("reset", Self::MailReset),
        ("verification", Self::MailVerification),
    ];

    fn from_path(segment: &str) -> Option<Self> {
        Self::PATHS
            .iter()
            .find(|(path, _)| *path == segment)
            .map(|(_, change)| *change)
    }
}

/// Makes `change` to user `raw` and answers with the row again (htmx) or a
/// redirect back to the list the form came from.
async fn change_row(
    req: &Request,
    body: Body,
    state: &AppState,
    raw: &str,
    change: RowChange,
) -> Result<Response, WebError> {
    let admin = require_admin(req, state)?;
    let form = read_form(req, body, &["back"]).await?;
    let back = back_to(form.optional("back"));
    let username = username(raw)?;
    let note = match change {
        RowChange::Disable | RowChange::Enable => {
            let disabling = matches!(change, RowChange::Disable);
            let ended = admin.set_disabled(&username, disabling).await?;
            let ended = ended.ok_or(WebError::NotFound)?;
            disabling.then(|| ended_note(ended))
        }
        RowChange::EndAccess => {
            let ended = admin.end_access(&username).await?;
            Some(ended_note(ended.ok_or(WebError::NotFound)?))
        }
        RowChange::ResetFactors => {
            let ended = admin.reset_factors(&username).await?;
            let ended = ended.ok_or(WebError::NotFound)?;
            Some(format!("second factors reset; {}", ended_note(ended)))
        }
        RowChange::MailReset => match admin.start_reset(&username).await? {
            Some(true) => Some("reset link queued".to_owned()),
            Some(false) => {
                return Err(WebError::Refused {
                    status: StatusCode::CONFLICT,
                    title: "No mail",
                    message: "This gatehouse sends no mail (no --smtp-url or --mail-dir).".into(),
                });
            }
            None => return Err(WebError::NotFound),
        },
        RowChange::MailVerification => match admin.send_verification(&username).await? {
            Some(true) => Some("verification link queued".to_owned()),
            Some(false) => {
                return Err(WebError::Refused {
                    status: StatusCode::CONFLICT,
                    title: "Not sent",
                    message: "This gatehouse sends no mail, or the address is verified already."
                        .into(),
                });
            }
            None => return Err(WebError::NotFound),
        },
    };
    after_change(req, &admin, &username, &back, note.as_deref()).await
}

/// One button of a user's row, `POST /admin/users/{name}/{change}`: the route
/// table names each of [`RowChange::PATHS`], and this one handler reads which
/// from the path.
#[handler]
pub async fn row_change(
    req: &Request,
    body: Body,
    Path(name): Path<String>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let segment = req.uri().path().rsplit('/').next().unwrap_or_default();
    let change = RowChange::from_path(segment).ok_or(WebError::NotFound)?;
    change_row(req, body, state, &name, change).await
}

#[handler]
pub async fn groups(
    req: &Request,
    body: Body,
    Path(name): Path<String>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let admin = require_admin(req, state)?;
    let form = read_form(req, body, &["back", "groups"]).await?;
    let back = back_to(form.optional("back"));
    let username = username(&name)?;
    let invalid = |err: domain::ValidationError| WebError::Refused {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        title: "Groups not changed",
        message: err.message,
    };
    let groups = groups_from_list(form.optional("groups").unwrap_or_default()).map_err(invalid)?;
    match admin.edit_groups(&username, GroupEdit::Set(groups)).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(WebError::NotFound),
        Err(GroupsError::Invalid(err)) => return Err(invalid(err)),
        Err(GroupsError::Core(err)) => return Err(err.into()),
    }
    after_change(req, &admin, &username, &back, Some("groups saved")).await
}

#[derive(Debug, Deserialize)]
pub struct BackQuery {
    back: Option<String>,
}

/// `GET /admin/users/{username}/delete`: are you sure?
#[handler]
pub async fn confirm_delete(
    req: &Request,
    Path(name): Path<String>,
    Query(query): Query<BackQuery>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let admin = require_admin(req, state)?;
    let user = admin
        .user(&username(&name)?)
        .await?
        .ok_or(WebError::NotFound)?;
    let back = back_to(query.back.as_deref());
    let action = format!("{PATH}/{}/delete", user.username);
    let content = html! {
        section.card {
            h1 { "Delete " (user.username.as_str()) "?" }
            p {
                "The account of " strong { (user.username.as_str()) } " (" (user.email.as_str()) ") "
                "is deleted with every session and API token of theirs. This cannot be undone; "
                "to stop them for now, disable them instead."
            }
            form method="post" action=(action) {
                (CsrfField(view.csrf))
                input type="hidden" name="back" value=(back);
                button.danger type="submit" { "Delete " (user.username.as_str()) }
                " "
                a href=(back) { "Cancel" }
            }
        }
    };
    Ok(super::page(&view, StatusCode::OK, "Delete user", content))
}

#[handler]
pub async fn delete(
    req: &Request,
    body: Body,
    Path(name): Path<String>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let admin = require_admin(req, state)?;
    let form = read_form(req, body, &["back"]).await?;
    let back = back_to(form.optional("back"));
    admin
        .delete(&username(&name)?)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(super::redirect_after_form(&view, &back))
}

/// Makes an invitation and shows its link once: in the invitations section
/// (htmx) or on the whole page (a plain form; the link is never put in a URL).
#[handler]
pub async fn invite(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let admin = require_admin(req, state)?;
    let form = read_form(req, body, &["email", "groups", "expires_in"]).await?;
    let expires_in = match form.optional("expires_in").map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<i64>().unwrap_or(-1)),
    };
    let checked = InvitationFields::check(
        form.optional("email").filter(|e| !e.trim().is_empty()),
        groups_from_list(form.optional("groups").unwrap_or_default()),
        expires_in,
    );
    let (status, link, errors) = match checked {
        Ok(fields) => {
            let (token, _) = admin.invite(fields).await?;
            let link = invitation_link(&state.config.public_url, &token);
            (
                StatusCode::CREATED,
                Some(link),
                super::FieldErrors::default(),
            )
        }
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, None, errors),
    };
    if is_htmx(req) {
        let invitations = admin.invitations().await?;
        let section = invitations_section(&invitations, view.csrf, link.as_deref(), &errors);
        return Ok(super::respond(&view, status, "Users", section, |s| s));
    }
    render(
        req,
        &admin,
        &ListQuery::default(),
        status,
        link.as_deref(),
        &errors,
    )
    .await
}

#[handler]
pub async fn revoke_invitation(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let admin = require_admin(req, state)?;
    if !admin.revoke_invitation(&id).await? {
        return Err(WebError::NotFound);
    }
    if is_htmx(req) {
        return Ok(Response::builder().status(StatusCode::OK).body(""));
    }
    Ok(super::see_other(&format!("{PATH}#invitations")))
}
