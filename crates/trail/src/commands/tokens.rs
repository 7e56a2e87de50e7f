//! `trail tokens` (through a server) and `trail login`, which keeps a token for later commands in
//! the user's configuration directory, readable by the user alone.

use crate::credentials::store_token;
use crate::target::{Access, Target, TargetArgs};
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::json;
use std::io::BufRead;

#[derive(clap::Args, Debug)]
pub struct TokensArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    action: TokensAction,
}

#[derive(clap::Subcommand, Debug)]
enum TokensAction {
    /// Issue a token; its secret is printed this once
    Create {
        name: String,
        /// ingest, read or admin (repeatable); never more than the owner's rights
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Whose token (default: yours; another user's needs administer)
        #[arg(long)]
        owner: Option<String>,
    },
    /// Revoke a token at once
    Revoke { id: i64 },
    /// List tokens (yours; an administrator sees all)
    List,
}

async fn server_target(args: &TargetArgs) -> anyhow::Result<Target> {
    if args.server.is_none() {
        bail!("tokens are managed through a server: pass --server (or set TRAIL_SERVER)");
    }
    Target::open(args, Access::Read).await
}

pub async fn tokens(args: TokensArgs) -> anyhow::Result<()> {
    let target = server_target(&args.target).await?;
    match args.action {
        TokensAction::Create { name, scopes, owner } => {
            let body = json!({"name": name, "scopes": scopes, "owner": owner});
            let issued = target.call_json(Method::POST, "/api/v1/tokens", Some(body)).await?;
            println!("token {}: {} (shown once)", issued["id"], issued["token"].as_str().unwrap_or(""));
        }
        TokensAction::Revoke { id } => {
            target.call_json(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await?;
        }
        TokensAction::List => {
            let listed = target.call_json(Method::GET, "/api/v1/tokens", None).await?;
            println!("{:>5}  {:<16}  {:<20}  {:<18}  {:<27}  REVOKED", "ID", "OWNER", "NAME", "SCOPES", "LAST USED");
            for token in listed["tokens"].as_array().into_iter().flatten() {
                let scopes: Vec<&str> =
                    token["scopes"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
                println!(
                    "{:>5}  {:<16}  {:<20}  {:<18}  {:<27}  {}",
                    token["id"],
                    token["owner"].as_str().unwrap_or(""),
                    token["name"].as_str().unwrap_or(""),
                    scopes.join(","),
                    token["last_used_at"].as_str().unwrap_or("never"),
                    token["revoked_at"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The server to log in to
    #[arg(long, env = "TRAIL_SERVER")]
    server: String,
    #[arg(long)]
    username: String,
    /// Read the password from the first line of standard input
    #[arg(long, required = true)]
    password_stdin: bool,
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".into());
    let body = json!({"username": args.username, "password": password,
                      "token": {"name": format!("trail login on {host}"), "scopes": ["ingest", "read", "admin"]}});
    let server = args.server.trim_end_matches('/');
    let response = reqwest::Client::new()
        .post(format!("{server}/api/v1/login"))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {server}"))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("login refused: {}", answer["error"]["message"].as_str().unwrap_or("no reason given"));
    }
    let token = answer["token"].as_str().context("the server issued no token")?;
    let path = store_token(server, token)?;
    println!(
        "logged in to {server} as {}; the token is kept in {}",
        answer["account"]["username"].as_str().unwrap_or(""),
        path.display()
    );
    Ok(())
}
