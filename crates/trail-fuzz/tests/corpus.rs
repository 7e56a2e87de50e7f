//! Every fuzz target over its corpus (`corpus/<target>/`): the seeds, and every input a fuzzer
//! once found failing, kept so that the fix stays.

#[test]
fn every_target_passes_its_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut failed = Vec::new();
    for (name, target) in trail_fuzz::TARGETS {
        let folder = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .map(|entry| entry.expect("a corpus entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name} has no corpus");
        for input in inputs {
            let data = std::fs::read(&input).expect("a corpus file");
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failed.push(format!("{name}: {}", input.display()));
            }
        }
    }
    assert!(failed.is_empty(), "targets failing on their corpus:\n{}", failed.join("\n"));
}
