//! Rights (A2), roles that grant them, and token scopes that narrow them.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Right {
    /// Read one's own entries.
    ReadOwn,
    /// Read every user's entries (the lists).
    ReadAll,
    /// See the details (full message, attributes) of one's own entries.
    DetailsOwn,
    /// See the details of anyone's entries.
    DetailsAll,
    /// Export entries.
    Export,
    /// Submit and follow jobs.
    Jobs,
    /// Send events.
    Ingest,
    /// Manage users, tokens, policy and forwarding.
    Administer,
}

impl Right {
    pub const ALL: [Right; 8] = [
        Right::ReadOwn,
        Right::ReadAll,
        Right::DetailsOwn,
        Right::DetailsAll,
        Right::Export,
        Right::Jobs,
        Right::Ingest,
        Right::Administer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Right::ReadOwn => "read_own",
            Right::ReadAll => "read_all",
            Right::DetailsOwn => "details_own",
            Right::DetailsAll => "details_all",
            Right::Export => "export",
            Right::Jobs => "jobs",
            Right::Ingest => "ingest",
            Right::Administer => "administer",
        }
    }

    pub fn parse(name: &str) -> Option<Right> {
        Right::ALL.into_iter().find(|r| r.name() == name)
    }
}

pub type RightSet = BTreeSet<Right>;

/// What a token may do, whatever its owner may: the owner's rights narrowed to its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Ingest,
    Read,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    fn rights(self) -> &'static [Right] {
        match self {
            Scope::Ingest => &[Right::Ingest],
            Scope::Read => {
                &[Right::ReadOwn, Right::ReadAll, Right::DetailsOwn, Right::DetailsAll, Right::Export, Right::Jobs]
            }
            Scope::Admin => &[Right::Administer],
        }
    }

    /// The rights a token with `scopes` has, given its owner's.
    pub fn narrow(owner: &RightSet, scopes: &[Scope]) -> RightSet {
        owner.iter().copied().filter(|right| scopes.iter().any(|s| s.rights().contains(right))).collect()
    }
}

/// Roles by name: the built-in ones and those the configuration adds or redefines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(BTreeMap<String, RightSet>);

impl Default for Roles {
    /// `admin` (everything), `auditor` (reads everything, with details and exports), `operator`
    /// (reads all entries, details of their own, jobs), `viewer` (the lists only).
    fn default() -> Self {
        use Right::*;
        let role = |rights: &[Right]| rights.iter().copied().collect::<RightSet>();
        Roles(BTreeMap::from([
            ("admin".to_owned(), role(&Right::ALL)),
            ("auditor".to_owned(), role(&[ReadOwn, ReadAll, DetailsOwn, DetailsAll, Export])),
            ("operator".to_owned(), role(&[ReadOwn, ReadAll, DetailsOwn, Jobs])),
            ("viewer".to_owned(), role(&[ReadOwn, ReadAll])),
        ]))
    }
}

impl Roles {
    /// Adds (or replaces) a role from the configuration, naming its rights.
    pub fn define(&mut self, name: &str, rights: &[String]) -> Result<(), String> {
        let parsed = rights
            .iter()
            .map(|r| {
                Right::parse(r).ok_or_else(|| {
                    let known: Vec<&str> = Right::ALL.iter().map(|r| r.name()).collect();
                    format!("role {name:?}: {r:?} is not a right; the rights are {}", known.join(", "))
                })
            })
            .collect::<Result<RightSet, String>>()?;
        self.0.insert(name.to_owned(), parsed);
        Ok(())
    }

    pub fn exists(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Every role's name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// The rights of someone holding `roles` (unknown role names grant nothing).
    pub fn rights_of<S: AsRef<str>>(&self, roles: &[S]) -> RightSet {
        roles.iter().filter_map(|r| self.0.get(r.as_ref())).flatten().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// V6: whether a viewer with `rights` may see the details of an entry by `author`.
    fn may_see_details(rights: &RightSet, viewer: &str, author: &str) -> bool {
        crate::query::DetailsReach::of(rights, Some(viewer)).covers(author)
    }

    #[test]
    fn built_in_roles_grant_what_the_issue_says() {
        let roles = Roles::default();
        let operator = roles.rights_of(&["operator"]);
        assert!(operator.contains(&Right::ReadAll) && operator.contains(&Right::DetailsOwn));
        assert!(!operator.contains(&Right::DetailsAll) && !operator.contains(&Right::Export));
        assert!(may_see_details(&operator, "bob", "bob") && !may_see_details(&operator, "bob", "alice"));
        let viewer = roles.rights_of(&["viewer"]);
        assert!(!may_see_details(&viewer, "bob", "bob"), "viewers read the lists only");
        let auditor = roles.rights_of(&["auditor"]);
        assert!(may_see_details(&auditor, "eve", "alice") && auditor.contains(&Right::Export));
        assert!(!auditor.contains(&Right::Administer));
        assert_eq!(roles.rights_of(&["admin"]).len(), Right::ALL.len());
        assert!(roles.rights_of(&["nonesuch"]).is_empty());
    }

    #[test]
    fn custom_roles_and_scopes() {
        let mut roles = Roles::default();
        roles.define("integration", &["ingest".into(), "read_all".into()]).unwrap();
        assert_eq!(roles.rights_of(&["integration"]), RightSet::from([Right::Ingest, Right::ReadAll]));
        let error = roles.define("broken", &["fly".into()]).unwrap_err();
        assert!(error.contains("\"fly\" is not a right") && error.contains("read_own"), "{error}");
        let admin = roles.rights_of(&["admin"]);
        assert_eq!(Scope::narrow(&admin, &[Scope::Ingest]), RightSet::from([Right::Ingest]));
        let viewer = roles.rights_of(&["viewer"]);
        assert!(Scope::narrow(&viewer, &[Scope::Admin, Scope::Ingest]).is_empty(), "a scope never adds rights");
    }
}
