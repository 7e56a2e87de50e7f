//! The account service against a real store: first start, logins under the policy, user
//! administration, and the events all of it records.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use trail_accounts::{AccountError, Accounts, LoginRefusal, events::Actor};
use trail_core::EventId;
use trail_core::Severity;
use trail_core::identity::{AuthPolicy, Roles};
use trail_store::prelude::*;
use trail_store_sqlite::SqliteStore;

/// The tests' clock, in minutes since the epoch (a fn pointer cannot capture).
static MINUTES: AtomicI64 = AtomicI64::new(0);

fn test_clock() -> jiff::Timestamp {
    jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_mins(MINUTES.load(Ordering::SeqCst))
}

struct Fixture {
    accounts: Accounts,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn admin() -> Actor {
    Actor {
        user: "admin".into(),
        client: Some(ip("192.0.2.1")),
        session: None,
        submitted_by: "session of admin".into(),
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("trail.db")).unwrap());
    let accounts = Accounts::new(store.clone(), AuthPolicy::default(), Roles::default());
    Fixture { accounts, store, _dir: dir }
}

async fn all_events(store: &SqliteStore) -> Vec<trail_core::Event> {
    store.read_after(EventId::ZERO, 10_000).await.unwrap()
}

async fn kinds(store: &SqliteStore) -> Vec<String> {
    all_events(store).await.into_iter().map(|e| e.body.kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_creates_one_administrator() {
    let f = fixture().await;
    let shown = f.accounts.ensure_admin(None).await.unwrap().expect("a generated password is shown once");
    assert!(shown.len() >= 20);
    assert_eq!(f.accounts.ensure_admin(None).await.unwrap(), None, "only on first start");
    let logged_in = f.accounts.login("Admin", &shown, ip("192.0.2.9")).await.unwrap().unwrap();
    assert_eq!(logged_in.account.roles, ["admin"]);
    assert!(logged_in.rights.contains(&trail_core::identity::Right::Administer));
    let given = fixture().await;
    assert_eq!(given.accounts.ensure_admin(Some("chosen-secret".into())).await.unwrap(), None);
    assert!(given.accounts.login("admin", "chosen-secret", ip("192.0.2.9")).await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_recorded_with_address_and_reason_and_reveal_nothing() {
    let f = fixture().await;
    f.accounts.add_user(&admin(), "alice", "Alice", vec!["operator".into()], "alice-secret").await.unwrap();
    let client = ip("198.51.100.4");
    assert_eq!(
        f.accounts.login("alice", "wrong", client).await.unwrap().unwrap_err(),
        LoginRefusal::InvalidCredentials
    );
    assert_eq!(f.accounts.login("mallory", "x", client).await.unwrap().unwrap_err(), LoginRefusal::InvalidCredentials);
    assert!(f.accounts.login("ALICE", "alice-secret", client).await.unwrap().is_ok());
    let events = all_events(&f.store).await;
    let logins: Vec<_> = events.iter().filter(|e| e.body.kind.starts_with("AUTH_LOGIN")).collect();
    assert_eq!(logins.len(), 3);
    assert_eq!(logins[0].body.attributes["reason"], "bad password");
    assert_eq!(logins[0].body.client.as_deref(), Some("198.51.100.4"));
    assert!(logins[0].body.severity <= Severity::Warning);
    assert_eq!(logins[1].body.attributes["reason"], "unknown user");
    assert_eq!(logins[1].body.name, "mallory");
    assert_eq!(logins[2].body.kind, "AUTH_LOGIN_SUCCESS");
    assert_eq!(logins[2].body.user, "alice");
    for event in &events {
        let text = serde_json::to_string(event).unwrap();
        assert!(!text.contains("alice-secret") && !text.contains("wrong"), "no password in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failures_lock_until_an_administrator_unlocks() {
    let f = fixture().await;
    f.accounts.add_user(&admin(), "bob", "", vec!["viewer".into()], "bob-secret").await.unwrap();
    let client = ip("203.0.113.5");
    for attempt in 1..=5 {
        let refusal = f.accounts.login("bob", "guess", client).await.unwrap().unwrap_err();
        let expected = if attempt < 5 { LoginRefusal::InvalidCredentials } else { LoginRefusal::AccountLocked };
        assert_eq!(refusal, expected, "attempt {attempt}");
    }
    let locked = all_events(&f.store)
        .await
        .into_iter()
        .find(|e| e.body.kind == "AUTH_ACCOUNT_LOCKED")
        .expect("the lock is an event");
    assert!(locked.body.severity <= Severity::Warning);
    assert_eq!(locked.body.name, "bob");
    assert_eq!(
        f.accounts.login("bob", "bob-secret", client).await.unwrap().unwrap_err(),
        LoginRefusal::AccountLocked,
        "a locked account refuses the right password"
    );
    f.accounts.unlock_user(&admin(), "bob").await.unwrap();
    assert!(f.accounts.login("bob", "bob-secret", client).await.unwrap().is_ok());
    let unlock = all_events(&f.store).await.into_iter().find(|e| e.body.kind == "USER_UNLOCKED").unwrap();
    assert_eq!((unlock.body.user.as_str(), unlock.body.name.as_str()), ("admin", "bob"), "names both");
    assert!(unlock.body.message.contains("bob") && unlock.body.message.contains("admin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_lock_lifts_by_itself_and_says_so() {
    let f = fixture().await;
    let accounts = Accounts::new(f.store.clone(), AuthPolicy::default(), Roles::default()).with_clock(test_clock);
    MINUTES.store(1_000, Ordering::SeqCst);
    accounts.add_user(&admin(), "carol", "", vec!["viewer".into()], "carol-secret").await.unwrap();
    for _ in 0..5 {
        let _ = accounts.login("carol", "guess", ip("203.0.113.6")).await.unwrap();
    }
    MINUTES.store(1_031, Ordering::SeqCst);
    assert!(accounts.login("carol", "carol-secret", ip("203.0.113.6")).await.unwrap().is_ok());
    let kinds = kinds(&f.store).await;
    let unlocked = kinds.iter().position(|k| k == "AUTH_ACCOUNT_UNLOCKED").expect("the automatic unlock is an event");
    assert_eq!(kinds[unlocked + 1], "AUTH_LOGIN_SUCCESS");
}

/// One address guessing across many usernames is slowed, never shut out: a correct password
/// from it still gets in (behind a shared proxy, so do everyone else's), and past its budget
/// its failures are summarised, not recorded one by one, so it cannot flood the trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_guessing_across_usernames_is_slowed_and_summarised() {
    static MINUTE: AtomicI64 = AtomicI64::new(5_000);
    fn clock() -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_mins(MINUTE.load(Ordering::SeqCst))
    }
    let f = fixture().await;
    let policy = AuthPolicy { max_failures_per_address: 3, ..AuthPolicy::default() };
    let accounts = Accounts::new(f.store.clone(), policy, Roles::default()).with_clock(clock);
    accounts.add_user(&admin(), "dave", "", vec!["viewer".into()], "dave-secret").await.unwrap();
    let attacker = ip("192.0.2.66");
    for i in 0..5 {
        let _ = accounts.login(&format!("user{i}"), "guess", attacker).await.unwrap();
    }
    let started = std::time::Instant::now();
    assert!(accounts.login("dave", "dave-secret", attacker).await.unwrap().is_ok(), "slowed, not refused");
    assert!(started.elapsed() >= std::time::Duration::from_secs(3), "the sixth attempt waits 3 s");
    let failures = kinds(&f.store).await.iter().filter(|k| *k == "AUTH_LOGIN_FAILURE").count();
    assert_eq!(failures, 3, "the failures within the budget, one by one");
    let throttled: Vec<_> =
        all_events(&f.store).await.into_iter().filter(|e| e.body.kind == "AUTH_LOGIN_THROTTLED").collect();
    assert_eq!(throttled.len(), 1, "one event says the address is slowed");
    assert_eq!(
        (throttled[0].body.attributes["failures"].as_str(), throttled[0].body.client.as_deref()),
        (Some("4"), Some("192.0.2.66"))
    );
    assert_eq!(accounts.record_throttle_summaries().await.unwrap(), 0, "its window has not ended");
    MINUTE.store(5_016, Ordering::SeqCst);
    assert_eq!(accounts.record_throttle_summaries().await.unwrap(), 1);
    let summary = all_events(&f.store).await.pop().unwrap();
    assert_eq!(
        (summary.body.kind.as_str(), summary.body.attributes["unrecorded"].as_str()),
        ("AUTH_LOGIN_THROTTLED", Some("1"))
    );
    assert!(accounts.login("dave", "dave-secret", ip("192.0.2.7")).await.unwrap().is_ok(), "others are unaffected");
}

/// A name that is no account answers as an account would, "account locked" included, so the
/// answers never tell which accounts exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_answer_as_accounts_do() {
    let f = fixture().await;
    f.accounts.add_user(&admin(), "gwen", "", vec!["viewer".into()], "gwen-secret").await.unwrap();
    for (name, address) in [("gwen", "198.51.100.20"), ("nobody", "198.51.100.21")] {
        let mut answers = Vec::new();
        for _ in 0..6 {
            answers.push(f.accounts.login(name, "guess", ip(address)).await.unwrap().unwrap_err());
        }
        let mut expected = vec![LoginRefusal::InvalidCredentials; 4];
        expected.extend([LoginRefusal::AccountLocked; 2]);
        assert_eq!(answers, expected, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_are_all_counted() {
    let f = Arc::new(fixture().await);
    f.accounts.add_user(&admin(), "erin", "", vec!["viewer".into()], "erin-secret").await.unwrap();
    let guesses: Vec<_> = (0..8)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                f.accounts.login("erin", "guess", ip(&format!("192.0.2.{}", 100 + i))).await.unwrap()
            })
        })
        .collect();
    for guess in guesses {
        let _ = guess.await.unwrap();
    }
    let erin = f.accounts.users().await.unwrap().into_iter().find(|a| a.username.as_str() == "erin").unwrap();
    assert!(f.accounts.is_locked(&erin), "eight parallel failures lock the account: none overwrote another");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_is_recorded_and_bad_input_stores_nothing() {
    let f = fixture().await;
    f.accounts.add_user(&admin(), "frank", "Frank", vec!["auditor".into()], "frank-1").await.unwrap();
    f.accounts.set_password(&admin(), "frank", "frank-2", false).await.unwrap();
    assert!(f.accounts.login("frank", "frank-2", ip("192.0.2.3")).await.unwrap().is_ok());
    f.accounts.lock_user(&admin(), "frank").await.unwrap();
    assert_eq!(
        f.accounts.login("frank", "frank-2", ip("192.0.2.3")).await.unwrap().unwrap_err(),
        LoginRefusal::AccountLocked
    );
    f.accounts.delete_user(&admin(), "frank").await.unwrap();
    let recorded = kinds(&f.store).await;
    for kind in ["USER_ADDED", "USER_PASSWORD_CHANGED", "USER_LOCKED", "USER_DELETED"] {
        assert!(recorded.contains(&kind.to_owned()), "{kind} in {recorded:?}");
    }
    f.accounts.add_user(&admin(), "gina", "", vec!["viewer".into()], "gina-secret").await.unwrap();
    let before = kinds(&f.store).await.len();
    let refusals = [
        f.accounts.add_user(&admin(), "hal", "", vec!["wizard".into()], "pw").await.unwrap_err(),
        f.accounts.add_user(&admin(), "hal", "", vec!["viewer".into()], "").await.unwrap_err(),
        f.accounts.add_user(&admin(), "hal", "", vec!["viewer".into()], &"x".repeat(2000)).await.unwrap_err(),
        f.accounts.add_user(&admin(), "h al", "", vec!["viewer".into()], "pw").await.unwrap_err(),
        f.accounts.add_user(&admin(), "ＧＩＮＡ", "", vec!["viewer".into()], "pw").await.unwrap_err(),
        f.accounts.delete_user(&admin(), "nobody").await.unwrap_err(),
    ];
    assert!(matches!(refusals[0], AccountError::Role(ref m) if m.contains("\"wizard\" is not a role")));
    assert!(matches!(refusals[1], AccountError::Password(_)));
    assert!(matches!(refusals[2], AccountError::Password(_)));
    assert!(matches!(refusals[3], AccountError::Username(_)));
    assert!(
        matches!(refusals[4], AccountError::Store(trail_store::StoreError::Conflict(ref m)) if m.contains("gina is taken")),
        "a look-alike of an existing name is the same name"
    );
    assert!(matches!(refusals[5], AccountError::Store(trail_store::StoreError::Conflict(_))));
    let after = kinds(&f.store).await.len();
    assert_eq!(after, before, "refused changes record nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_idle_or_absolute_and_each_end_is_recorded() {
    static SESSION_MINUTES: AtomicI64 = AtomicI64::new(0);
    fn clock() -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_mins(SESSION_MINUTES.load(Ordering::SeqCst))
    }
    let f = fixture().await;
    let accounts = Accounts::new(f.store.clone(), AuthPolicy::default(), Roles::default()).with_clock(clock);
    SESSION_MINUTES.store(10_000, Ordering::SeqCst);
    accounts.add_user(&admin(), "sam", "", vec!["viewer".into()], "sam-secret").await.unwrap();
    let logged_in = accounts.login("sam", "sam-secret", ip("192.0.2.5")).await.unwrap().unwrap();

    let idle = accounts.open_session(&logged_in, None, ip("192.0.2.5")).await.unwrap();
    assert!(accounts.resolve_session(&idle.id).await.unwrap().is_some());
    SESSION_MINUTES.store(10_031, Ordering::SeqCst);
    assert!(accounts.resolve_session(&idle.id).await.unwrap().is_none(), "31 minutes idle");

    let busy = accounts.open_session(&logged_in, None, ip("192.0.2.5")).await.unwrap();
    for step in 1..=25 {
        SESSION_MINUTES.store(10_031 + step * 29, Ordering::SeqCst);
        let alive = accounts.resolve_session(&busy.id).await.unwrap().is_some();
        assert_eq!(alive, step * 29 < 12 * 60, "step {step}: activity never extends past 12 hours");
    }

    let forgotten = accounts.open_session(&logged_in, None, ip("192.0.2.5")).await.unwrap();
    SESSION_MINUTES.store(20_000, Ordering::SeqCst);
    assert_eq!(accounts.sweep_sessions().await.unwrap(), 1, "the sweep ends a session nobody returned to");
    assert!(accounts.resolve_session(&forgotten.id).await.unwrap().is_none());

    let last = accounts.open_session(&logged_in, None, ip("192.0.2.5")).await.unwrap();
    accounts.logout(&last.id, ip("192.0.2.5")).await.unwrap();
    assert!(accounts.resolve_session(&last.id).await.unwrap().is_none());

    let events = all_events(&f.store).await;
    let expiries: Vec<&str> = events
        .iter()
        .filter(|e| e.body.kind == "AUTH_SESSION_EXPIRED")
        .map(|e| e.body.attributes["expiry"].as_str().unwrap())
        .collect();
    assert_eq!(expiries, ["idle", "absolute", "absolute"], "the forgotten one is past both limits; absolute is named");
    assert!(events.iter().any(|e| e.body.kind == "AUTH_LOGOUT" && e.body.user == "sam"));
}
