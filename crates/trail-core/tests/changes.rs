//! Golden tests for change rendering (C1, C2). Each `golden/NAME.json` is a change; its
//! rendering must equal `golden/NAME.txt` byte for byte. `UPDATE_GOLDEN=1` rewrites the `.txt`
//! files; review the diff before committing it.

use std::path::Path;
use trail_core::Change;

#[test]
fn renderings_match_the_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let change: Change = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let rendered = change.render();
        let golden = path.with_extension("txt");
        if update {
            std::fs::write(&golden, &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(rendered, expected, "{} differs from its golden file", path.display());
        if change.changes.iter().any(|c| c.secret) {
            for secret in change.changes.iter().filter(|c| c.secret) {
                for value in [&secret.old, &secret.new].into_iter().flatten() {
                    assert!(!rendered.contains(value.as_str()), "secret {value:?} leaked");
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 8, "every golden case ran");
}

#[test]
fn masking_removes_secrets_from_the_structured_form() {
    let change: Change = serde_json::from_str(
        r#"{"op":"update","object":"o","table":"t","keys":{},"changes":[{"variable":"k","old":"a","new":"b","secret":true}]}"#,
    )
    .unwrap();
    let stored = serde_json::to_string(&change.masked()).unwrap();
    assert!(stored.contains("********") && !stored.contains("\"a\"") && !stored.contains("\"b\""));
}
