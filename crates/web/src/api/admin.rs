//! `/admin/…`: what admins do — users (list and search, one with their sessions
//! and tokens, disable, enable, delete, groups, end every session and token) and
//! invitations (make, list, revoke). Members of the admins' group only: anyone
//! else who is logged in gets 403. The operations are `core::admin`'s, as on the
//! admin page and in the CLI, audit events included.

use crate::core::records::{Cursor, UserQuery};
use domain::Username;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::{Request, RequestBody};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::registry::Registry;
use poem_openapi::{ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, OpenApi};

use super::models::{
    AccessEndedView, AdminUser, AdminUserDetail, GroupsRequest, InvitationRequest, InvitationView,
    NewInvitationView, SessionView, TokenView, UserList, marked,
};
use super::problem::{
    AdminChangeStatuses, AdminGroupsStatuses, AdminLookupStatuses, AdminReadStatuses, ApiError,
    InvitationStatuses, Problems,
};
use super::responses::{Done, Found};
use super::{ApiTags, Caller};
use crate::core::admin::{
    Admin, Door, GroupEdit, GroupsError, InvitationFields, PAGE_SIZE, groups_from_names,
    invitation_link,
};
use crate::core::{Authenticated, ClientInfo, Credential};
use crate::http::AppState;
use crate::http::identity::client_info;

pub struct AdminApi;

#[derive(ApiResponse)]
pub enum InvitationCreated {
    /// The invitation; `link` carries its secret, shown this once.
    #[oai(status = 201)]
    Created(Json<NewInvitationView>),
}

/// The caller of an admin operation: logged in and admitted like any [`Caller`],
/// and a member of the admins' group — anyone else gets 403 before the operation
/// runs.
pub struct AdminCaller {
    state: AppState,
    who: Arc<Authenticated>,
    client: ClientInfo,
}

impl AdminCaller {
    /// The caller as an admin (checked when the request was read).
    fn admin(&self) -> Result<Admin<'_>, ApiError> {
        Admin::of(&self.state, &self.who, Door::Api, &self.client).ok_or_else(not_admin)
    }

    /// The admin and the user `raw` names (a name that cannot be one is a 404,
    /// like a user who does not exist).
    fn on(&self, raw: &str) -> Result<(Admin<'_>, Username), ApiError> {
        Ok((self.admin()?, username(raw)?))
    }
}

/// A user operation's outcome, or 404 when there is no such user.
fn user_found<T>(found: Option<T>) -> Result<T, ApiError> {
    found.ok_or_else(|| ApiError::not_found("user"))
}

fn not_admin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "Admins only: you are not a member of the admins' group.",
    )
}

impl<'a> ApiExtractor<'a> for AdminCaller {
    const TYPES: &'static [ApiExtractorType] = <Caller as ApiExtractor<'a>>::TYPES;
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Caller as ApiExtractor<'a>>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        <Caller as ApiExtractor<'a>>::security_schemes()
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let caller = Caller::from_request(req, body, param_opts).await?;
        let state = req
            .data::<AppState>()
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no state"))?;
        let client = client_info(req, &state);
        let found = Self {
            state,
            who: caller.0,
            client,
        };
        found.admin()?;
        Ok(found)
    }
}

fn username(raw: &str) -> Result<Username, ApiError> {
    Username::parse(raw).map_err(|_| ApiError::not_found("user"))
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// List users
    ///
    /// Users in username order, a page at a time (keyset paging: pass `next` as
    /// `after`, or `previous` as `before`). `search` keeps those whose username or
    /// email starts with it.
    #[oai(path = "/admin/users", method = "get", operation_id = "adminListUsers")]
    #[allow(
        clippy::too_many_arguments,
        reason = "one per query parameter: poem-openapi documents them from the signature"
    )]
    async fn list(
        &self,
        caller: AdminCaller,
        /// The start of a username or email address (any case).
        search: Query<Option<String>>,
        /// The users after this username.
        after: Query<Option<String>>,
        /// The users before this username (ignored with `after`).
        before: Query<Option<String>>,
        /// Users per page, 1 to 200; 50 when absent.
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u64>>,
    ) -> Result<Found<UserList>, Problems<AdminReadStatuses>> {
        let admin = caller.admin()?;
        let from = match (after.0, before.0) {
            (Some(after), _) => Cursor::After(after),
            (None, Some(before)) => Cursor::Before(before),
            (None, None) => Cursor::Start,
        };
        let page = admin
            .users(&UserQuery {
                search: search.0,
                from,
                limit: limit.0.unwrap_or(PAGE_SIZE),
            })
            .await?;
        let total = admin.count_users().await?;
        let edge = |user: Option<&domain::User>| user.map(|u| u.username.to_string());
        Ok(Found::Ok(Json(UserList {
            next: edge(page.users.last().filter(|_| page.has_next)),
            previous: edge(page.users.first().filter(|_| page.has_previous)),
            users: page
                .users
                .iter()
                .map(|u| AdminUser::new(u, admin.is_admin(u)))
                .collect(),
            total,
        })))
    }

    /// A user, with sessions and tokens
    #[oai(
        path = "/admin/users/:username",
        method = "get",
        operation_id = "adminGetUser"
    )]
    async fn get(
        &self,
        caller: AdminCaller,
        username: Path<String>,
    ) -> Result<Found<AdminUserDetail>, Problems<AdminLookupStatuses>> {
        let (admin, user) = caller.on(&username.0)?;
        let access = user_found(admin.access_of(&user).await?)?;
        let (my_session, my_token) = match &caller.who.via {
            Credential::Session(s) => (Some(s.id.as_str()), None),
            Credential::Token(t) => (None, Some(t.id.as_str())),
        };
        Ok(Found::Ok(Json(AdminUserDetail {
            user: AdminUser::new(&access.user, admin.is_admin(&access.user)),
            sessions: marked(&access.sessions, my_session, SessionView::new),
            tokens: marked(&access.tokens, my_token, TokenView::new),
        })))
    }

    /// Disable a user
    ///
    /// They cannot log in any more, and every session and API token of theirs
    /// ends now, on every node. The last enabled admin cannot be disabled (409).
    #[oai(
        path = "/admin/users/:username/disable",
        method = "post",
        operation_id = "adminDisableUser"
    )]
    async fn disable(
        &self,
        caller: AdminCaller,
        username: Path<String>,
    ) -> Result<Found<AccessEndedView>, Problems<AdminChangeStatuses>> {
        let (admin, user) = caller.on(&username.0)?;
        let ended = user_found(admin.set_disabled(&user, true).await?)?;
        Ok(Found::Ok(Json(ended.into())))
    }

    /// Enable a user again
    #[oai(
        path = "/admin/users/:username/enable",
        method = "post",
        operation_id = "adminEnableUser"
    )]
    async fn enable(
        &self,
        caller: AdminCaller,
        username: Path<String>,
    ) -> Result<Done, Problems<AdminChangeStatuses>> {
        let (admin, user) = caller.on(&username.0)?;
        user_found(admin.set_disabled(&user, false).await?)?;
        Ok(Done::default())
    }

    /// Delete a user
    ///
    /// With every session and API token of theirs. The last enabled admin cannot
    /// be deleted (409).
    #[oai(
        path = "/admin/users/:username",
        method = "delete",
        operation_id = "adminDeleteUser"
    )]
    async fn delete(
        &self,
        caller: AdminCaller,
        username: Path<String>,
    ) -> Result<Found<AccessEndedView>, Problems<AdminChangeStatuses>> {
        let (admin, user) = caller.on(&username.0)?;
        let ended = user_found(admin.delete(&user).await?)?;
        Ok(Found::Ok(Json(ended.into())))
    }

    /// End a user's sessions and tokens
    ///
    /// Every session and API token of theirs ends now, on every node; the account
    /// stays, and they may log in again.
    #[oai(
        path = "/admin/users/:username/sessions",
        method = "delete",
        operation_id = "adminEndAccess"
    )]
    async fn end_access(
        &self,
        caller: AdminCaller,
        username: Path<String>,
    ) -> Result<Found<AccessEndedView>, Problems<AdminLookupStatuses>> {
        let (admin, user) = caller.on(&username.0)?;
        let ended = user_found(admin.end_access(&user).await?)?;
        Ok(Found::Ok(Json(ended.into())))
    }

    /// Reset a user's second factors
    ///
    /// For a lost authenticator: their authenticator app, recovery codes and
    /// passkeys are removed and every session and API token of theirs ends; they
    /// log in with the password alone and may set a second factor up again.
    #[oai(
        path = "/admin/users/:username/factors",
        method = "delete",
        operation_id = "adminResetFactors"
    )]
    async fn reset_factors(
        &self,
        caller: AdminCaller,
        username: Path<String>,
    ) -> Result<Found<AccessEndedView>, Problems<AdminLookupStatuses>> {
        let (admin, user) = caller.on(&username.0)?;
        let ended = user_found(admin.reset_factors(&user).await?)?;
        Ok(Found::Ok(Json(ended.into())))
    }

    /// Mail a user a reset link
    ///
    /// The same link as "Forgot your password?" sends (30 minutes, single use).
    /// 409 when this gatehouse sends no mail.
    #[oai(
        path = "/admin/users/:username/reset",
        method = "post",
        operation_id = "adminStartReset"
    )]
    async fn start_reset(
        &self,
        caller: AdminCaller,
        username: Path<String>,
    ) -> Result<Done, Problems<AdminChangeStatuses>> {
        let (admin, user) = caller.on(&username.0)?;
        match admin.start_reset(&user).await? {
            Some(true) => Ok(Done::default()),
            Some(false) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "This gatehouse sends no mail (no --smtp-url or --mail-dir).",
            )
            .into()),
            None => Err(ApiError::not_found("user").into()),
        }
    }

    /// Set a user's groups
    ///
    /// `/auth?groups=` sees the change at the next request. Taking the last
    /// enabled admin out of the admins' group is refused (409).
    #[oai(
        path = "/admin/users/:username/groups",
        method = "put",
        operation_id = "adminSetGroups"
    )]
    async fn set_groups(
        &self,
        caller: AdminCaller,
        username: Path<String>,
        body: Json<GroupsRequest>,
    ) -> Result<Found<AdminUser>, Problems<AdminGroupsStatuses>> {
        let admin = caller.admin()?;
        let username = self::username(&username.0)?;
        let names: Vec<&str> = body.groups.iter().map(|g| &**g).collect();
        let groups = groups_from_names(&names).map_err(field_error)?;
        let user = match admin.edit_groups(&username, GroupEdit::Set(groups)).await {
            Ok(user) => user.ok_or_else(|| ApiError::not_found("user"))?,
            Err(GroupsError::Invalid(err)) => return Err(field_error(err).into()),
            Err(GroupsError::Core(err)) => return Err(ApiError::from(err).into()),
        };
        Ok(Found::Ok(Json(AdminUser::new(
            &user,
            admin.is_admin(&user),
        ))))
    }

    /// List invitations
    ///
    /// Those not used yet, newest first, expired ones included; never their
    /// secrets.
    #[oai(
        path = "/admin/invitations",
        method = "get",
        operation_id = "adminListInvitations"
    )]
    async fn invitations(
        &self,
        caller: AdminCaller,
    ) -> Result<Found<Vec<InvitationView>>, Problems<AdminReadStatuses>> {
        let admin = caller.admin()?;
        let now = crate::core::records::now();
        let list = admin.invitations().await?;
        Ok(Found::Ok(Json(
            list.iter().map(|i| InvitationView::new(i, now)).collect(),
        )))
    }

    /// Make an invitation
    ///
    /// A single-use sign-up link, optionally bound to an email address, putting
    /// the new user in `groups`. It works even when sign-up is by invitation only,
    /// but not when sign-up is closed.
    #[oai(
        path = "/admin/invitations",
        method = "post",
        operation_id = "adminCreateInvitation"
    )]
    async fn invite(
        &self,
        caller: AdminCaller,
        body: Json<InvitationRequest>,
    ) -> Result<InvitationCreated, Problems<InvitationStatuses>> {
        let admin = caller.admin()?;
        let body = body.0;
        let names: Vec<&str> = body.groups.iter().flatten().map(|g| &**g).collect();
        let fields = InvitationFields::check(
            body.email.as_deref(),
            groups_from_names(&names),
            body.expires_in,
        )
        .map_err(ApiError::from)?;
        let (token, invitation) = admin.invite(fields).await?;
        Ok(InvitationCreated::Created(Json(NewInvitationView {
            link: invitation_link(&caller.state.config.public_url, &token),
            invitation: InvitationView::new(&invitation, crate::core::records::now()),
        })))
    }

    /// Revoke an invitation
    #[oai(
        path = "/admin/invitations/:id",
        method = "delete",
        operation_id = "adminRevokeInvitation"
    )]
    async fn revoke_invitation(
        &self,
        caller: AdminCaller,
        id: Path<String>,
    ) -> Result<Done, Problems<AdminLookupStatuses>> {
        let admin = caller.admin()?;
        if !admin.revoke_invitation(&id.0).await? {
            return Err(ApiError::not_found("invitation").into());
        }
        Ok(Done::default())
    }
}

fn field_error(err: domain::ValidationError) -> ApiError {
    let mut errors = crate::core::accounts::FieldErrors::default();
    errors.push(err);
    ApiError::from(errors)
}
