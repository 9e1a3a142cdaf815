//! `gatehouse factors reseal`: the second-factor secrets moved to a new key.

use anyhow::Context;
use secrecy::ExposeSecret;

use super::args::FactorsCommand;
use super::secret_key_from;
use crate::core::seal::FactorSeal;

pub async fn run(command: FactorsCommand) -> anyhow::Result<()> {
    let FactorsCommand::Reseal {
        secret_key_file,
        old_secret_key_file,
        db,
    } = command;
    let new = secret_key_from(secret_key_file.as_deref(), "GATEHOUSE_SECRET_KEY")?
        .context("give the new key: GATEHOUSE_SECRET_KEY or --secret-key-file")?;
    let old = secret_key_from(old_secret_key_file.as_deref(), "GATEHOUSE_OLD_SECRET_KEY")?;
    let services = super::default_services(db).await?;
    let new = FactorSeal::from_secret(new.expose_secret().as_bytes(), true);
    let old = old.map(|old| FactorSeal::from_secret(old.expose_secret().as_bytes(), true));
    match crate::core::factors::reseal(&services, old, &new).await? {
        Ok(done) => {
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
