//! Every case of the conformance suite runs on every backend: each public case function in
//! `src/conformance/` must be named in `conformance_suite!`, which every backend's tests invoke,
//! and every name there must be a case. A case added without it would pass by never running.

use std::collections::BTreeSet;
use std::path::Path;

fn cases_defined(dir: &Path) -> BTreeSet<String> {
    let mut cases = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("pub async fn ")
                && rest.contains("<S: Store>")
            {
                cases.insert(rest.split('<').next().unwrap().to_owned());
            }
        }
    }
    cases
}

fn cases_run(macro_source: &str) -> BTreeSet<String> {
    let start = macro_source.find("@cases $make;").expect("the macro lists its cases");
    let list = &macro_source[start + "@cases $make;".len()..];
    let list = &list[..list.find(");").expect("the list ends")];
    list.split(',').map(|name| name.trim().to_owned()).filter(|name| !name.is_empty()).collect()
}

#[test]
fn every_conformance_case_is_run_by_the_macro() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/conformance");
    let defined = cases_defined(&dir);
    let run = cases_run(&std::fs::read_to_string(dir.join("mod.rs")).unwrap());
    assert!(defined.len() > 30, "the cases were found: {defined:?}");
    let unrun: Vec<_> = defined.difference(&run).collect();
    assert!(unrun.is_empty(), "cases no backend runs (add them to conformance_suite!): {unrun:?}");
    let missing: Vec<_> = run.difference(&defined).collect();
    assert!(missing.is_empty(), "the macro names cases that do not exist: {missing:?}");
}
