//! A1-A2: accounts, their lockout state, and refused changes.

use super::*;
use crate::Store;
use std::sync::Arc;
use trail_core::EventBody;
use trail_core::identity::{Account, AccountState, AccountWrite, LockedBy, PasswordHash, Scope, Session, Username};

fn account(name: &str, roles: &[&str]) -> Account {
    Account {
        username: Username::parse(name).unwrap(),
        display_name: format!("{name} (display)"),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        // A stored hash is opaque to the store; a real one is not needed here.
        password: PasswordHash::from_stored(format!("$argon2id$stand-in-for-{name}")),
        state: AccountState::default(),
        created_at: at("2026-06-01T00:00:00Z"),
    }
}

fn user_event(kind: &str, name: &str) -> EventBody {
    event(serde_json::json!({"user": "admin", "kind": kind, "name": name, "message": format!("{kind} {name}")}))
}

pub async fn accounts_are_created_changed_and_listed<S: Store>(store: Arc<S>) {
    let alice = account("Alice", &["operator"]);
    let ids = store
        .write_account(AccountWrite::Create(alice.clone()), vec![user_event("USER_ADDED", "alice")])
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    let name = Username::parse("alice").unwrap();
    assert_eq!(store.account(&name).await.unwrap(), Some(alice.clone()));
    store.write_account(AccountWrite::Create(account("bob", &["viewer"])), vec![]).await.unwrap();
    let names: Vec<String> = store.accounts().await.unwrap().iter().map(|a| a.username.to_string()).collect();
    assert_eq!(names, ["alice", "bob"]);
    let new_hash = PasswordHash::from_stored("$argon2id$changed".into());
    store
        .write_account(
            AccountWrite::Password {
                name: name.clone(),
                hash: new_hash.clone(),
                keep_session: None,
                revoke_tokens_at: None,
            },
            vec![user_event("USER_PASSWORD_CHANGED", "alice")],
        )
        .await
        .unwrap();
    store.write_account(AccountWrite::Roles(name.clone(), vec!["auditor".into()]), vec![]).await.unwrap();
    let changed = store.account(&name).await.unwrap().unwrap();
    assert_eq!((changed.password, changed.roles), (new_hash, vec!["auditor".to_owned()]));
    store.write_account(AccountWrite::Delete(name.clone()), vec![user_event("USER_DELETED", "alice")]).await.unwrap();
    assert_eq!(store.account(&name).await.unwrap(), None);
    let kinds: Vec<String> =
        store.read_after(EventId::ZERO, 10).await.unwrap().into_iter().map(|e| e.body.kind).collect();
    assert_eq!(kinds, ["USER_ADDED", "USER_PASSWORD_CHANGED", "USER_DELETED"]);
}

pub async fn refused_account_changes_store_nothing<S: Store>(store: Arc<S>) {
    store
        .write_account(AccountWrite::Create(account("carol", &[])), vec![user_event("USER_ADDED", "carol")])
        .await
        .unwrap();
    let taken =
        store.write_account(AccountWrite::Create(account("CAROL", &[])), vec![user_event("USER_ADDED", "carol")]).await;
    assert!(matches!(&taken, Err(crate::StoreError::Conflict(m)) if m.contains("carol is taken")), "{taken:?}");
    let ghost = Username::parse("ghost").unwrap();
    for write in [
        AccountWrite::Delete(ghost.clone()),
        AccountWrite::Password {
            name: ghost.clone(),
            hash: PasswordHash::from_stored("x".into()),
            keep_session: None,
            revoke_tokens_at: None,
        },
        AccountWrite::State(ghost.clone(), AccountState::default()),
        AccountWrite::Roles(ghost.clone(), vec![]),
    ] {
        let refused = store.write_account(write, vec![user_event("USER_DELETED", "ghost")]).await;
        assert!(
            matches!(&refused, Err(crate::StoreError::Conflict(m)) if m.contains("no account ghost")),
            "{refused:?}"
        );
    }
    assert_eq!(
        store.read_after(EventId::ZERO, 10).await.unwrap().len(),
        1,
        "only the first creation's event is stored"
    );
}

pub async fn lock_states_round_trip<S: Store>(store: Arc<S>) {
    let name = Username::parse("dave").unwrap();
    store.write_account(AccountWrite::Create(account("dave", &["operator"])), vec![]).await.unwrap();
    let states = [
        AccountState {
            recent_failures: vec![at("2026-06-01T10:00:00.000001Z"), at("2026-06-01T10:01:00Z")],
            locked: None,
        },
        AccountState { recent_failures: vec![], locked: Some((at("2026-06-01T10:05:00Z"), LockedBy::Policy)) },
        AccountState {
            recent_failures: vec![],
            locked: Some((at("2026-06-02T00:00:00Z"), LockedBy::Administrator("root".into()))),
        },
        AccountState::default(),
    ];
    for state in states {
        store.write_account(AccountWrite::State(name.clone(), state.clone()), vec![]).await.unwrap();
        assert_eq!(store.account(&name).await.unwrap().unwrap().state, state);
    }
}

/// A password change ends every session of the account but the one kept, in the same
/// transaction as its event, and revokes the account's tokens when asked; other accounts keep
/// theirs.
pub async fn a_password_change_ends_other_sessions_and_may_revoke_tokens<S: Store>(store: Arc<S>) {
    for name in ["carol", "dave"] {
        store.write_account(AccountWrite::Create(account(name, &["operator"])), vec![]).await.unwrap();
    }
    let (carol, dave) = (Username::parse("carol").unwrap(), Username::parse("dave").unwrap());
    let session = |owner: &Username, n: u8| Session {
        digest: [n; 32],
        username: owner.clone(),
        csrf: format!("csrf-{n}"),
        created_at: at("2026-06-01T00:00:00Z"),
        last_seen_at: at("2026-06-01T00:00:00Z"),
        client: None,
    };
    for (owner, n) in [(&carol, 1), (&carol, 2), (&dave, 3)] {
        store.write_account(AccountWrite::CreateSession(session(owner, n)), vec![]).await.unwrap();
        let token = AccountWrite::CreateToken {
            owner: owner.clone(),
            name: format!("t{n}"),
            scopes: vec![Scope::Read],
            digest: [n + 10; 32],
            at: at("2026-06-01T00:00:00Z"),
        };
        store.write_account(token, vec![]).await.unwrap();
    }
    let change = |keep_session, revoke_tokens_at| AccountWrite::Password {
        name: carol.clone(),
        hash: PasswordHash::from_stored("$argon2id$new".into()),
        keep_session,
        revoke_tokens_at,
    };
    store.write_account(change(Some([1; 32]), None), vec![user_event("USER_PASSWORD_CHANGED", "carol")]).await.unwrap();
    let open = |sessions: Vec<Session>| sessions.into_iter().map(|s| s.digest[0]).collect::<Vec<_>>();
    assert_eq!(open(store.sessions().await.unwrap()), [1, 3], "carol's other session ended, dave's stays");
    assert!(store.tokens().await.unwrap().iter().all(|t| t.is_active()), "tokens are kept unless asked");
    let now = at("2026-06-02T00:00:00Z");
    store.write_account(change(None, Some(now)), vec![]).await.unwrap();
    assert_eq!(open(store.sessions().await.unwrap()), [3], "without a session to keep, all of carol's end");
    let active: Vec<String> =
        store.tokens().await.unwrap().into_iter().filter(|t| t.is_active()).map(|t| t.name).collect();
    assert_eq!(active, ["t3"], "carol's tokens are revoked, dave's stay");
}

/// The credentials count moves after each committed change that can stop a credential, and
/// only then: not for a new account, a refused change, or a token or session touched.
pub async fn credential_changes_move_the_credentials_count<S: Store>(store: Arc<S>) {
    let count = store.watch_credentials();
    let moved = |since: u64| *count.borrow() != since;
    let name = Username::parse("carol").unwrap();
    store.write_account(AccountWrite::Create(account("carol", &["viewer"])), vec![]).await.unwrap();
    let since = *count.borrow();
    let token = AccountWrite::CreateToken {
        owner: name.clone(),
        name: "ci".into(),
        scopes: vec![Scope::Read],
        digest: [7; 32],
        at: at("2026-06-01T00:00:00Z"),
    };
    store.write_account(token, vec![]).await.unwrap();
    let id = store.tokens().await.unwrap()[0].id;
    store.write_account(AccountWrite::TouchToken { id, at: at("2026-06-02T00:00:00Z") }, vec![]).await.unwrap();
    assert!(!moved(since), "creating or touching a token stops no credential");
    let gone = AccountWrite::Roles(Username::parse("nobody").unwrap(), vec![]);
    assert!(store.write_account(gone, vec![]).await.is_err());
    assert!(!moved(since), "a refused change stops no credential");

    let stopping = [
        AccountWrite::RevokeToken { id, at: at("2026-06-03T00:00:00Z") },
        AccountWrite::Roles(name.clone(), vec!["auditor".into()]),
        AccountWrite::State(name.clone(), AccountState::default()),
        AccountWrite::Delete(name),
    ];
    for write in stopping {
        let since = *count.borrow();
        store.write_account(write, vec![]).await.unwrap();
        assert!(moved(since), "a change that can stop a credential moves the count at once");
    }
}

/// Login limits are kept per key as given, changed in place, forgotten when the update says
/// so, and listed for the sweep once they settle.
pub async fn login_limits_are_kept_per_key_and_listed_once_settled<S: Store>(store: Arc<S>) {
    use trail_core::identity::LoginLimit;
    let limit = |text: &str, settles_at: &str| LoginLimit { text: text.into(), settles_at: at(settles_at) };
    let seen = |store: Arc<S>, key: &'static str, then: Option<LoginLimit>| async move {
        let mut saw = None;
        let update = Box::new(|saved: Option<&str>| {
            saw = Some(saved.map(str::to_owned));
            then
        });
        store.update_login_limit(key, update).await.unwrap();
        saw.expect("the update is applied once")
    };
    let (address, name) = ("address/192.0.2.1", "name/nobody");
    assert_eq!(seen(store.clone(), address, Some(limit("one", "2026-06-01T00:15:00Z"))).await, None, "nothing yet");
    assert_eq!(seen(store.clone(), name, Some(limit("other", "2026-06-01T00:30:00Z"))).await, None, "keys are apart");
    let kept = seen(store.clone(), address, Some(limit("two", "2026-06-01T00:20:00Z"))).await;
    assert_eq!(kept.as_deref(), Some("one"));
    let settled = |now| {
        let store = store.clone();
        async move {
            let mut keys = store.settled_login_limits(at(now)).await.unwrap();
            keys.sort();
            keys
        }
    };
    assert!(settled("2026-06-01T00:19:59Z").await.is_empty(), "the changed limit settles later");
    assert_eq!(settled("2026-06-01T00:20:00Z").await, [address]);
    assert_eq!(settled("2026-06-01T01:00:00Z").await, [address, name]);
    assert_eq!(seen(store.clone(), address, None).await.as_deref(), Some("two"));
    assert_eq!(seen(store.clone(), address, None).await, None, "forgotten");
    assert_eq!(settled("2026-06-01T01:00:00Z").await, [name]);
}
