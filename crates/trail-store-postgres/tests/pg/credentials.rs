//! One trail whatever node answers: each node caches the API tokens it resolved, yet a token
//! stopped through one node (revoked, its account locked or deleted) stops on every node within
//! a second.

use std::sync::Arc;
use std::time::{Duration, Instant};
use trail_accounts::{Accounts, IssuedToken, events::Actor};
use trail_core::identity::{AuthPolicy, Grantor, Roles, Scope};
use trail_store::prelude::*;
use trail_store_postgres::PgStore;
use trail_store_postgres::testing::TestSchema;

fn admin() -> Actor {
    Actor { user: "admin".into(), client: None, session: None, submitted_by: "session of admin".into() }
}

/// A node: its store and its account service.
async fn node(schema: &TestSchema) -> (Arc<PgStore>, Accounts) {
    let store = Arc::new(schema.store().await);
    (store.clone(), Accounts::new(store, AuthPolicy::default(), Roles::default()))
}

async fn user_with_token(node: &Accounts, name: &str) -> IssuedToken {
    node.add_user(&admin(), name, name, vec!["viewer".into()], "correct horse battery staple").await.unwrap();
    node.create_token(&admin(), &Grantor::Session, name, "ci", vec![Scope::Read]).await.unwrap()
}

async fn works(node: &Accounts, token: &IssuedToken) -> bool {
    node.authenticate_token(&token.secret).await.unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_stopped_through_one_node_stops_on_every_node_within_a_second() {
    let schema = TestSchema::new().await;
    let ((store, one), (_, other)) = (node(&schema).await, node(&schema).await);
    let tokens = [
        user_with_token(&one, "vera").await,
        user_with_token(&one, "walt").await,
        user_with_token(&one, "xena").await,
        user_with_token(&one, "yuri").await,
    ];
    for token in &tokens {
        assert!(works(&other, token).await, "the other node resolves the token, and caches it");
    }
    // The other node does cache: a revocation nobody announces (made in the database by hand)
    // goes unseen there for now. That is what the announcements below are for.
    schema.execute(&format!("UPDATE api_tokens SET revoked_at = 0 WHERE id = {}", tokens[3].id)).await;
    assert!(works(&other, &tokens[3]).await, "the other node looked its cached token up again");

    let vera = store.tokens().await.unwrap().into_iter().find(|t| t.id == tokens[0].id).unwrap();
    one.revoke_token(&admin(), &Grantor::Session, &vera).await.unwrap();
    one.lock_user(&admin(), "walt").await.unwrap();
    one.delete_user(&admin(), "xena").await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(1);
    for token in &tokens {
        while works(&other, token).await {
            assert!(Instant::now() < deadline, "token {} still works on the other node after a second", token.id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Browser sessions live in the database, so they are every node's: one opened through one node
/// works through the other, and ends there the moment it is logged out or its account locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_is_every_nodes() {
    let schema = TestSchema::new().await;
    let ((_, one), (_, other)) = (node(&schema).await, node(&schema).await);
    let client: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let password = "correct horse battery staple";
    let mut sessions = Vec::new();
    for name in ["vera", "walt"] {
        one.add_user(&admin(), name, name, vec!["viewer".into()], password).await.unwrap();
        let logged_in = one.login(name, password, client).await.unwrap().expect("the password is right");
        let opened = one.open_session(&logged_in, None, client).await.unwrap();
        let held = other.resolve_session(&opened.id).await.unwrap().expect("the other node knows the session");
        assert_eq!(held.session.username.as_str(), name);
        sessions.push(opened.id);
    }
    one.logout(&sessions[0], client).await.unwrap();
    assert!(other.resolve_session(&sessions[0]).await.unwrap().is_none(), "a logged-out session works elsewhere");
    one.lock_user(&admin(), "walt").await.unwrap();
    assert!(other.resolve_session(&sessions[1]).await.unwrap().is_none(), "a locked account's session works elsewhere");
}
