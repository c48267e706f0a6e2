//! `ohmnibus token create --role ROLE --name NAME [--expires WHEN]` and
//! `ohmnibus token revoke ID`.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use sqlx::PgPool;

use crate::domain::role::Role;
use crate::service::tokens::{issue_token_until, revoke_token_cli};
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
        /// When the token stops working: an RFC 3339 time
        /// (2027-03-01T00:00:00Z) or a number of days from now (90d).
        /// Without it, the token works until revoked.
        #[arg(long, value_parser = parse_expiry)]
        expires: Option<Expiry>,
    },
    /// Revoke a token by its id (as `GET /api/v1/tokens` lists it): from the
    /// server's next request on, it authenticates nothing.
    Revoke {
        /// The token's id.
        id: i64,
    },
}

/// When a token given on the command line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    At(DateTime<Utc>),
    InDays(u32),
}

fn parse_expiry(text: &str) -> Result<Expiry, String> {
    if let Some(days) = text.strip_suffix('d') {
        return match days.parse::<u32>() {
            Ok(days) if (1..=36_500).contains(&days) => Ok(Expiry::InDays(days)),
            _ => Err(format!("{text:?}: give 1d to 36500d, or an RFC 3339 time")),
        };
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| Expiry::At(at.with_timezone(&Utc)))
        .map_err(|error| format!("{text:?} is neither a number of days (90d) nor an RFC 3339 time: {error}"))
}

async fn database() -> anyhow::Result<PgPool> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    let pool = connect(&url)
        .await
        .with_context(|| format!("connecting to {}", redact(&url)))?;
    migrate(&pool).await.context("applying migrations")?;
    Ok(pool)
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { role, name, expires } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "--name must not be empty");
            let now = Utc::now();
            let expires_at = expires.map(|expiry| match expiry {
                Expiry::At(at) => at,
                Expiry::InDays(days) => now + chrono::Duration::days(i64::from(days)),
            });
            let pool = database().await?;
            let issued = issue_token_until(&pool, name, role, expires_at, now).await?;
            match expires_at {
                Some(at) => eprintln!(
                    "token {} for {name} with role {role}, until {}:",
                    issued.id,
                    at.to_rfc3339()
                ),
                None => eprintln!("token {} for {name} with role {role}:", issued.id),
            }
            println!("{}", issued.token);
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            let pool = database().await?;
            if revoke_token_cli(&pool, id).await? {
                eprintln!("token {id} revoked");
            } else {
                eprintln!("token {id} was already revoked");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_days_or_a_time() {
        assert_eq!(parse_expiry("90d"), Ok(Expiry::InDays(90)));
        assert_eq!(
            parse_expiry("2027-03-01T00:00:00+01:00"),
            Ok(Expiry::At("2027-02-28T23:00:00Z".parse().unwrap()))
        );
        assert!(parse_expiry("0d").is_err());
        assert!(parse_expiry("soon").unwrap_err().contains("soon"));
    }
}
