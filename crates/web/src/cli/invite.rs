//! `gatehouse invite create|list|revoke`: single-use signup links.

use super::args::InviteCommand;
use super::control::{note, say};
use super::default_services;
use crate::core::admin::{self, Admin, InvitationFields, group_list};

pub async fn run(command: InviteCommand) -> anyhow::Result<()> {
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
            let services = default_services(db).await?;
            let (token, invitation) = Admin::cli(&services).invite(fields).await?;
            say!("{}", admin::invitation_link(&public_url, &token));
            note!(
                "invitation {} (single use, expires in {expires_in} s)",
                invitation.id
            );
        }
        InviteCommand::List { db } => {
            let services = default_services(db).await?;
            let now = crate::core::records::now();
            for invitation in Admin::cli(&services).invitations().await? {
                say!(
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
            let services = default_services(db).await?;
            if !Admin::cli(&services).revoke_invitation(&id).await? {
                anyhow::bail!("there is no invitation {id}");
            }
            say!("revoked invitation {id}");
        }
    }
    Ok(())
}
