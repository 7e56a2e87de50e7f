//! Administration (A1-A2, F4 in the UI): users, the authentication policy, API tokens and
//! forwarding destinations. Every change goes through the account service, so it is recorded.

use super::{Ui, problem};
use crate::AppState;
use crate::auth::actor;
use crate::client::ClientAddress;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use trail_accounts::Accounts;

/// A message after an action, carried back in the URL.
#[derive(Deserialize, Default)]
pub struct Flash {
    done: Option<String>,
    error: Option<String>,
}

fn flash(flash: &Flash) -> Markup {
    html! {
        @if let Some(done) = &flash.done { p.ok role="status" { (done) } }
        @if let Some(error) = &flash.error { p.error role="alert" { (error) } }
    }
}

fn back(path: &str, outcome: Result<String, String>) -> Response {
    let (key, text) = match outcome {
        Ok(done) => ("done", done),
        Err(error) => ("error", error),
    };
    let text: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
    Redirect::to(&format!("{path}?{key}={text}")).into_response()
}

/// The top of every administration page: its title, the tabs, and the message of the last action.
fn header(current: &str, message: Option<&Flash>) -> Markup {
    let tabs = [
        ("/admin/users", "Users"),
        ("/admin/policy", "Authentication policy"),
        ("/admin/tokens", "API tokens"),
        ("/admin/destinations", "Forwarding"),
    ];
    html! {
        h1 { "Administration" }
        nav.actions aria-label="Administration" {
            @for (href, label) in tabs { a href=(href) aria-current=[(href == current).then_some("page")] { (label) } }
        }
        @if let Some(message) = message { (flash(message)) }
    }
}

fn csrf(ui: &Ui) -> Markup {
    html! { input type="hidden" name="csrf" value=(ui.csrf()); }
}

pub async fn users(State(state): State<AppState>, ui: Ui, Query(message): Query<Flash>) -> Response {
    let accounts = match state.accounts.users().await {
        Ok(accounts) => accounts,
        Err(error) => return problem(&ui, StatusCode::SERVICE_UNAVAILABLE, "Users", &error.to_string()),
    };
    let roles: Vec<String> = state.accounts.roles().names();
    let content = html! {
        (header("/admin/users", Some(&message)))
        h2 { "Users" }
        div.table-wrap { table #users {
            thead { tr { th scope="col" { "Username" } th scope="col" { "Name" } th scope="col" { "Roles" } th scope="col" { "State" } th scope="col" { "Actions" } } }
            tbody {
                @for account in &accounts {
                    @let name = account.username.as_str();
                    @let locked = state.accounts.is_locked(account);
                    tr data-user=(name) {
                        td { (name) }
                        td { (account.display_name) }
                        td { (account.roles.join(", ")) }
                        td { @if locked { span.badge.sev-warning { "locked" } } @else { "active" } }
                        td {
                            form.inline method="post" action={ "/admin/users/" (name) "/" (if locked { "unlock" } else { "lock" }) } {
                                (csrf(&ui))
                                button type="submit" { (if locked { "Unlock" } else { "Lock" }) }
                            }
                            " "
                            form.inline method="post" action={ "/admin/users/" (name) "/password" } {
                                (csrf(&ui))
                                label { span.skip { "New password for " (name) } input type="password" name="password" autocomplete="new-password" required placeholder="new password"; }
                                label { input type="checkbox" name="revoke_tokens" value="1"; " revoke tokens" }
                                button type="submit" { "Set password" }
                            }
                            " "
                            form.inline method="post" action={ "/admin/users/" (name) "/delete" } data-confirm={ "Delete " (name) "?" } {
                                (csrf(&ui))
                                button.danger type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
        } }
        h2 { "Add a user" }
        form.stack method="post" action="/admin/users" #add-user {
            (csrf(&ui))
            label { "Username" input name="username" required autocomplete="off"; }
            label { "Name (optional)" input name="display_name"; }
            label { "Role"
                select name="role" { @for role in &roles { option value=(role) selected[role == "viewer"] { (role) } } }
            }
            label { "Password" input type="password" name="password" required autocomplete="new-password"; }
            button.primary type="submit" { "Add user" }
        }
    };
    ui.page("Users", content)
}

#[derive(Deserialize)]
pub struct NewUser {
    username: String,
    #[serde(default)]
    display_name: String,
    role: String,
    password: String,
}

pub async fn add_user(
    State(state): State<AppState>,
    ui: Ui,
    ClientAddress(client): ClientAddress,
    Form(new): Form<NewUser>,
) -> Response {
    let outcome = state
        .accounts
        .add_user(&actor(&ui.viewer, client), &new.username, &new.display_name, vec![new.role], &new.password)
        .await;
    back("/admin/users", outcome.map(|_| format!("Added {}.", new.username)).map_err(|e| e.to_string()))
}

#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    /// The checkbox: present when ticked.
    revoke_tokens: Option<String>,
}

pub async fn user_action(
    State(state): State<AppState>,
    ui: Ui,
    ClientAddress(client): ClientAddress,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let actor = actor(&ui.viewer, client);
    let accounts: &Accounts = &state.accounts;
    let outcome = match action.as_str() {
        "lock" => accounts.lock_user(&actor, &name).await.map(|_| format!("Locked {name}.")),
        "unlock" => accounts.unlock_user(&actor, &name).await.map(|_| format!("Unlocked {name}.")),
        "delete" => accounts.delete_user(&actor, &name).await.map(|_| format!("Deleted {name}.")),
        "password" => {
            accounts.set_password(&actor, &name, &form.password, form.revoke_tokens.is_some()).await.map(|changed| {
                format!(
                    "Changed the password of {name}: {} other session(s) ended, {}.",
                    changed.sessions_ended,
                    if form.revoke_tokens.is_some() {
                        format!("{} token(s) revoked", changed.tokens_revoked)
                    } else {
                        "tokens kept".to_owned()
                    }
                )
            })
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    back("/admin/users", outcome.map_err(|e| e.to_string()))
}

pub async fn policy(State(state): State<AppState>, ui: Ui) -> Response {
    let policy = state.accounts.policy();
    let minutes = |d: jiff::SignedDuration| format!("{} minutes", d.as_secs() / 60);
    let content = html! {
        (header("/admin/policy", None))
        h2 { "Authentication policy" }
        dl.fields #policy {
            dt { "Lock an account after" } dd { (policy.max_failures) " failed logins within " (minutes(policy.failure_window)) }
            dt { "Unlock automatically" } dd { @match policy.auto_unlock_after { Some(after) => { "after " (minutes(after)) }, None => "never: an administrator unlocks it" } }
            dt { "Failed logins from one address" } dd { "at most " (policy.max_failures_per_address) " within " (minutes(policy.failure_window)) }
        }
        p.muted { "Set in the configuration file's " code { "[auth]" } " section; every lock, unlock and failed login is an entry in the change logs." }
    };
    ui.page("Authentication policy", content)
}

pub async fn tokens(State(state): State<AppState>, ui: Ui, Query(message): Query<Flash>) -> Response {
    let (viewer, grantor) = (&ui.viewer, ui.viewer.grantor());
    let manageable = state.accounts.manageable_tokens(viewer.user.as_deref(), &viewer.rights, &grantor);
    let tokens = manageable.await.unwrap_or_default();
    let me = ui.viewer.user.clone().unwrap_or_default();
    let content = html! {
        (header("/admin/tokens", Some(&message)))
        h2 { "API tokens" }
        div.table-wrap { table #tokens {
            thead { tr { th { "Id" } th { "Owner" } th { "Name" } th { "Scopes" } th { "Created" } th { "Last used" } th { "State" } } }
            tbody {
                @for token in &tokens {
                    tr {
                        td { (token.id) } td { (token.owner.as_str()) } td { (token.name) }
                        td { (token.scopes.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")) }
                        td.time { (ui.time(token.created_at)) }
                        td.time { @match token.last_used_at { Some(at) => (ui.time(at)), None => "never" } }
                        td {
                            @if token.is_active() {
                                form.inline method="post" action={ "/admin/tokens/" (token.id) "/revoke" } data-confirm={ "Revoke " (token.name) "?" } {
                                    (csrf(&ui)) button.danger type="submit" { "Revoke" }
                                }
                            } @else { "revoked" }
                        }
                    }
                }
            }
        } }
        h2 { "Create a token" }
        form.stack method="post" action="/admin/tokens" {
            (csrf(&ui))
            label { "Name" input name="name" required; }
            label { "Owner" input name="owner" value=(me) required; }
            fieldset { legend { "Scopes" }
                @for scope in ["ingest", "read", "admin"] { label { input type="checkbox" name="scope" value=(scope) checked[scope == "ingest"]; " " (scope) } }
            }
            button.primary type="submit" { "Create" }
        }
    };
    ui.page("API tokens", content)
}

pub async fn create_token(
    State(state): State<AppState>,
    ui: Ui,
    ClientAddress(client): ClientAddress,
    body: axum::body::Bytes,
) -> Response {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let value = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
    let scopes: Vec<String> = fields.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let scopes = match crate::auth::parse_scopes(&scopes) {
        Ok(scopes) => scopes,
        Err(error) => return back("/admin/tokens", Err(error.message)),
    };
    let issued = state
        .accounts
        .create_token(&actor(&ui.viewer, client), &ui.viewer.grantor(), &value("owner"), &value("name"), scopes)
        .await;
    let issued = match issued {
        Ok(issued) => issued,
        Err(error) => return back("/admin/tokens", Err(error.to_string())),
    };
    let content = html! {
        (header("/admin/tokens", None))
        p.ok role="status" { "Token " (issued.id) " created. Copy it now: it is shown this once." }
        p { code #new-token { (issued.secret) } }
        p { a href="/admin/tokens" { "Back to the tokens" } }
    };
    ui.page("Token created", content)
}

pub async fn revoke_token(
    State(state): State<AppState>,
    ui: Ui,
    ClientAddress(client): ClientAddress,
    Path(id): Path<i64>,
) -> Response {
    let (viewer, grantor) = (&ui.viewer, ui.viewer.grantor());
    let tokens = state.accounts.manageable_tokens(viewer.user.as_deref(), &viewer.rights, &grantor).await;
    let Some(token) = tokens.unwrap_or_default().into_iter().find(|t| t.id == id) else {
        return back("/admin/tokens", Err(format!("There is no token {id}.")));
    };
    let outcome = state.accounts.revoke_token(&actor(viewer, client), &grantor, &token).await;
    back("/admin/tokens", outcome.map(|_| format!("Revoked token {id}.")).map_err(|e| e.to_string()))
}

pub async fn destinations(State(state): State<AppState>, ui: Ui) -> Response {
    let reports = state.forwarding.reports();
    let content = html! {
        (header("/admin/destinations", None))
        h2 { "Forwarding destinations" }
        div.table-wrap { table #destinations {
            thead { tr { th { "Name" } th { "Type" } th { "Target" } th { "Delivered through" } th { "Backlog" } th { "State" } th { "Last error" } } }
            tbody {
                @for r in &reports {
                    tr {
                        td { (r.name) } td { (r.type_name) } td { (r.target) } td { (r.delivered_through) } td { (r.backlog) }
                        td { (r.state) }
                        td { @match &r.last_error { Some(e) => { (e.at) ": " (e.message) }, None => "-" } }
                    }
                }
                @if reports.is_empty() { tr { td colspan="7" { "No destinations: add " code { "[[destinations]]" } " to the configuration file." } } }
            }
        } }
        (checkpoints(&ui, &state).await)
    };
    ui.page("Forwarding", content)
}

/// The newest signed checkpoint and what each witness has done: its cosignatures, refusals and
/// silence (S4).
async fn checkpoints(ui: &Ui, state: &AppState) -> Markup {
    let latest = state.store.latest_checkpoint().await.ok().flatten();
    let witnesses = state.checkpointer.as_deref().map(|c| c.witnesses());
    let reports = witnesses.map(|w| w.reports()).unwrap_or_default();
    html! {
        h2 { "Checkpoints and witnesses" }
        p #newest-checkpoint {
            @match &latest {
                Some(checkpoint) => {
                    "The newest checkpoint covers " (checkpoint.size) " entries, signed " (ui.time(checkpoint.signed_at))
                    " (" a href={ "/events/" (checkpoint.event_id) } { "entry " (checkpoint.event_id) } ")"
                    @if let Some(witnesses) = witnesses.filter(|w| !w.keys().is_empty()) {
                        @let cosigned = trail_core::witness::cosigned_by(&checkpoint.note, &witnesses.keys());
                        "; cosigned by " (cosigned.len()) " of " (witnesses.keys().len()) " witnesses, "
                        (witnesses.required()) " required"
                    }
                    "."
                }
                None => "No checkpoint has been signed yet.",
            }
        }
        div.table-wrap { table #witnesses {
            thead { tr { th { "Witness" } th { "URL" } th { "Cosigned through" } th { "Cosigned" } th { "Refused or silent" } th { "Last error" } } }
            tbody {
                @for r in &reports {
                    tr {
                        td { (r.name) } td { (r.url) }
                        td { @match r.cosigned_size { Some(size) => (size), None => "-" } }
                        td { (r.cosigned) } td { (r.refused) }
                        td { (r.last_error.as_deref().unwrap_or("-")) }
                    }
                }
                @if reports.is_empty() { tr { td colspan="6" { "No witnesses: add " code { "[[witnesses]]" } " to the configuration file." } } }
            }
        } }
    }
}
