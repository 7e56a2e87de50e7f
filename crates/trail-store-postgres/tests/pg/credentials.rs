//! One trail whatever node answers: each node caches the API tokens it resolved, yet a token
//! stopped through one node (revoked, its account locked or deleted) stops on every node within
//! a second; and the login policy's counts (an account's, an address's, an unknown name's) are
//! every node's, so N nodes never give an attacker N times the guesses.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use trail_accounts::{Accounts, IssuedToken, LoginRefusal, events::Actor};
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

/// Wrong passwords sent at once through two nodes lock the account after exactly the policy's
/// count: no node judges an attempt against a state another node is changing, so two nodes do
/// not give an attacker twice the guesses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_through_two_nodes_lock_after_exactly_the_policys_count() {
    let schema = TestSchema::new().await;
    let ((store, one), (_, other)) = (node(&schema).await, node(&schema).await);
    one.add_user(&admin(), "vera", "vera", vec!["viewer".into()], "correct horse battery staple").await.unwrap();
    let nodes = Arc::new([one, other]);
    let attempts: Vec<_> = (0..16u8)
        .map(|n| {
            let nodes = nodes.clone();
            tokio::spawn(async move {
                // An address each, so that no address is slowed: this is about the account.
                let client = std::net::IpAddr::from([192, 0, 2, 10 + n]);
                let node = &nodes[usize::from(n % 2)];
                node.login("vera", "a wrong guess", client).await.unwrap().expect_err("the guess is wrong")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for attempt in attempts {
        answers.push(attempt.await.unwrap());
    }
    let judged_wrong = answers.iter().filter(|a| **a == LoginRefusal::InvalidCredentials).count();
    let locked = answers.iter().filter(|a| **a == LoginRefusal::AccountLocked).count();
    let policy = AuthPolicy::default().max_failures as usize;
    // As on one node: the first max_failures - 1 are wrong, the one after locks, the rest find
    // the account locked.
    assert_eq!((judged_wrong, locked), (policy - 1, 16 - (policy - 1)), "{answers:?}");
    let events = store.read_after(trail_core::EventId::ZERO, 1000).await.unwrap();
    let locks = events.iter().filter(|e| e.body.kind == "AUTH_ACCOUNT_LOCKED").count();
    assert_eq!(locks, 1, "one lock, recorded once");
    let right = nodes[1].login("vera", "correct horse battery staple", "192.0.2.99".parse().unwrap()).await.unwrap();
    assert_eq!(right.err(), Some(LoginRefusal::AccountLocked));
}

/// The nodes of one schema under `policy` and a clock the test moves (in minutes).
async fn nodes_under(schema: &TestSchema, policy: AuthPolicy, clock: fn() -> jiff::Timestamp) -> [Accounts; 2] {
    let node =
        || async { Accounts::new(Arc::new(schema.store().await), policy.clone(), Roles::default()).with_clock(clock) };
    [node().await, node().await]
}

fn kinds_of(events: &[trail_core::Event], kind: &str) -> Vec<trail_core::Event> {
    events.iter().filter(|e| e.body.kind == kind).cloned().collect()
}

/// One address guessing through two nodes has one budget, not one per node; and what it tried
/// past the budget is summed up once, by whichever node's sweep comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_guessing_through_two_nodes_has_one_budget() {
    static MINUTE: AtomicI64 = AtomicI64::new(0);
    fn clock() -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_mins(MINUTE.load(Ordering::SeqCst))
    }
    let schema = TestSchema::new().await;
    let policy = AuthPolicy { max_failures_per_address: 2, ..AuthPolicy::default() };
    let nodes = nodes_under(&schema, policy, clock).await;
    let attacker = "192.0.2.66".parse().unwrap();
    for n in 0..4 {
        let answer = nodes[n % 2].login(&format!("user{n}"), "a guess", attacker).await.unwrap();
        assert_eq!(answer.err(), Some(LoginRefusal::InvalidCredentials));
    }
    let store = schema.store().await;
    let events = store.read_after(trail_core::EventId::ZERO, 1000).await.unwrap();
    assert_eq!(kinds_of(&events, "AUTH_LOGIN_FAILURE").len(), 2, "the budget's failures, one by one");
    let throttled = kinds_of(&events, "AUTH_LOGIN_THROTTLED");
    assert_eq!(throttled.len(), 1, "the third attempt, through either node, is past the budget");
    assert_eq!(throttled[0].body.attributes["failures"].as_str(), Some("3"));

    assert_eq!(nodes[0].record_throttle_summaries().await.unwrap(), 0, "the window has not ended");
    MINUTE.store(16, Ordering::SeqCst);
    assert_eq!(nodes[1].record_throttle_summaries().await.unwrap(), 1);
    assert_eq!(nodes[0].record_throttle_summaries().await.unwrap(), 0, "summed up once");
    let events = store.read_after(trail_core::EventId::ZERO, 1000).await.unwrap();
    let summary = kinds_of(&events, "AUTH_LOGIN_THROTTLED").pop().unwrap();
    assert_eq!(summary.body.attributes["unrecorded"].as_str(), Some("1"), "the fourth attempt");
    assert!(store.settled_login_limits(clock() + jiff::SignedDuration::from_hours(1)).await.unwrap().is_empty());
}

/// A name that is no account locks after the policy's count through two nodes, as an account
/// does, so that the answers do not tell which names exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_name_locks_through_two_nodes_as_an_account_does() {
    let schema = TestSchema::new().await;
    let nodes = nodes_under(&schema, AuthPolicy::default(), jiff::Timestamp::now).await;
    let mut answers = Vec::new();
    for n in 0..6u8 {
        let client = std::net::IpAddr::from([192, 0, 2, 10 + n]);
        answers.push(nodes[usize::from(n % 2)].login("nobody", "a guess", client).await.unwrap().unwrap_err());
    }
    let policy = AuthPolicy::default().max_failures as usize;
    let mut expected = vec![LoginRefusal::InvalidCredentials; policy - 1];
    expected.resize(6, LoginRefusal::AccountLocked);
    assert_eq!(answers, expected);
}
