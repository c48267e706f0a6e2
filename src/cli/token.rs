//! `ohmnibus token create --role ROLE --name NAME`.

use anyhow::Context;
use clap::Subcommand;

use crate::domain::role::Role;
use crate::service::tokens::issue_token;
use crate::startup::redact;
use crate::store::database::{connect, migrate};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue a token. It is printed once, alone on the last line; only its digest is stored.
    Create {
        /// viewer, operator, engineer, secadm or secaud (IEC 62351-8).
        #[arg(long)]
        role: Role,
        /// Who the token is for (a person or a system).
        #[arg(long)]
        name: String,
    },
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { role, name } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "--name must not be empty");
            let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
            let pool = connect(&url)
                .await
                .with_context(|| format!("connecting to {}", redact(&url)))?;
            migrate(&pool).await.context("applying migrations")?;
            let token = issue_token(&pool, name, role).await?;
            eprintln!("token for {name} with role {role}:");
            println!("{token}");
            Ok(())
        }
    }
}
