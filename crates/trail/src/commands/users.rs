//! `trail users`: local accounts, administered through a server (`--server`) or, with no server
//! running, on the local data directory. Either way the account service records each change.

use crate::target::{Access, Target, TargetArgs};
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::json;
use std::io::BufRead;
use std::sync::Arc;
use trail_accounts::Accounts;
use trail_accounts::events::Actor;
use trail_core::identity::{AuthPolicy, Roles};

#[derive(clap::Args, Debug)]
pub struct UsersArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    action: UsersAction,
}

#[derive(clap::Subcommand, Debug)]
enum UsersAction {
    /// Add a user; without --password-stdin a password is generated and shown once
    Add {
        name: String,
        /// A role: admin, auditor, operator, viewer, or one the configuration defines (repeatable)
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user
    Delete { name: String },
    /// Set a user's password; without --password-stdin one is generated and shown once
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        /// Also revoke every API token of the user (their other sessions end in any case)
        #[arg(long)]
        revoke_tokens: bool,
    },
    /// Lock a user until an administrator unlocks them
    Lock { name: String },
    /// Unlock a user and clear their failure count
    Unlock { name: String },
    /// List the users
    List,
}

/// The password from standard input, or a generated one to show.
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            bail!("standard input held no password");
        }
        return Ok((password, false));
    }
    Ok((trail_accounts::random_hex(15)?, true))
}

/// What a password change ended, on standard error.
fn show_ended(sessions: usize, tokens_revoked: Option<usize>) {
    let tokens = tokens_revoked.map_or("API tokens kept".to_owned(), |n| format!("{n} API token(s) revoked"));
    eprintln!("{sessions} other session(s) ended; {tokens}");
}

fn show_generated(name: &str, password: &str, generated: bool) {
    if generated {
        println!("password of {name}: {password} (shown once)");
    }
}

pub async fn run(args: UsersArgs) -> anyhow::Result<()> {
    let access = if matches!(args.action, UsersAction::List) { Access::Read } else { Access::Write };
    match Target::open(&args.target, access).await? {
        target @ Target::Remote { .. } => remote(&target, args.action).await,
        Target::Local(store) => local(store, args.action).await,
    }
}

fn print_list(accounts: &[serde_json::Value]) {
    println!("{:<20}  {:<24}  {:<20}  {:<6}  CREATED", "USERNAME", "DISPLAY NAME", "ROLES", "LOCKED");
    for account in accounts {
        let roles: Vec<&str> = account["roles"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
        println!(
            "{:<20}  {:<24}  {:<20}  {:<6}  {}",
            account["username"].as_str().unwrap_or(""),
            account["display_name"].as_str().unwrap_or(""),
            roles.join(","),
            if account["locked"].as_bool().unwrap_or(false) { "yes" } else { "" },
            account["created_at"].as_str().unwrap_or("")
        );
    }
}

async fn remote(target: &Target, action: UsersAction) -> anyhow::Result<()> {
    match action {
        UsersAction::Add { name, roles, display_name, password_stdin } => {
            let (password, generated) = password(password_stdin)?;
            let body = json!({"username": name, "display_name": display_name, "roles": roles, "password": password});
            target.call_json(Method::POST, "/api/v1/accounts", Some(body)).await?;
            show_generated(&name, &password, generated);
        }
        UsersAction::Delete { name } => {
            target.call_json(Method::DELETE, &format!("/api/v1/accounts/{name}"), None).await?;
        }
        UsersAction::Passwd { name, password_stdin, revoke_tokens } => {
            let (password, generated) = password(password_stdin)?;
            let body = json!({"password": password, "revoke_tokens": revoke_tokens});
            let answer =
                target.call_json(Method::POST, &format!("/api/v1/accounts/{name}/password"), Some(body)).await?;
            show_generated(&name, &password, generated);
            let count = |key: &str| answer[key].as_u64().unwrap_or(0) as usize;
            show_ended(count("sessions_ended"), revoke_tokens.then(|| count("tokens_revoked")));
        }
        UsersAction::Lock { name } => {
            target.call_json(Method::POST, &format!("/api/v1/accounts/{name}/lock"), None).await?;
        }
        UsersAction::Unlock { name } => {
            target.call_json(Method::POST, &format!("/api/v1/accounts/{name}/unlock"), None).await?;
        }
        UsersAction::List => {
            let answer = target.call_json(Method::GET, "/api/v1/accounts", None).await?;
            print_list(answer["accounts"].as_array().map_or(&[][..], Vec::as_slice));
        }
    }
    Ok(())
}

/// On the local data directory the actor is the operating-system user running the command.
async fn local(store: Arc<dyn trail_store::Store>, action: UsersAction) -> anyhow::Result<()> {
    let accounts = Accounts::new(store, AuthPolicy::default(), Roles::default());
    let user = crate::target::local_user();
    let submitted_by = trail_core::event::submitted_by::local(&user);
    let actor = Actor { user, client: None, session: None, submitted_by };
    match action {
        UsersAction::Add { name, roles, display_name, password_stdin } => {
            let (password, generated) = password(password_stdin)?;
            accounts.add_user(&actor, &name, &display_name, roles, &password).await?;
            show_generated(&name, &password, generated);
        }
        UsersAction::Delete { name } => drop(accounts.delete_user(&actor, &name).await?),
        UsersAction::Passwd { name, password_stdin, revoke_tokens } => {
            let (password, generated) = password(password_stdin)?;
            let changed = accounts.set_password(&actor, &name, &password, revoke_tokens).await?;
            show_generated(&name, &password, generated);
            show_ended(changed.sessions_ended, revoke_tokens.then_some(changed.tokens_revoked));
        }
        UsersAction::Lock { name } => drop(accounts.lock_user(&actor, &name).await?),
        UsersAction::Unlock { name } => drop(accounts.unlock_user(&actor, &name).await?),
        UsersAction::List => {
            let listed: Vec<serde_json::Value> = accounts
                .users()
                .await?
                .iter()
                .map(|a| {
                    json!({"username": a.username.to_string(), "display_name": a.display_name, "roles": a.roles,
                           "locked": accounts.is_locked(a), "created_at": trail_core::time::format_rfc3339(a.created_at)})
                })
                .collect();
            print_list(&listed);
        }
    }
    Ok(())
}
