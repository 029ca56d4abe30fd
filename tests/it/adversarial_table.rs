//! `tests/ADVERSARIAL.md` names a test for every attack tried; this keeps
//! the table honest: each test it names exists where it says.

use std::path::{Path, PathBuf};

/// The tests named in the table's last column.
fn named_tests(table: &str) -> Vec<String> {
    table
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.trim_end_matches('|').rsplit('|').next())
        .filter_map(|cell| {
            let cell = cell.trim();
            (cell.starts_with('`') && cell.ends_with('`') && cell.len() > 2)
                .then(|| cell[1..cell.len() - 1].to_string())
        })
        .collect()
}

/// Where `reference` says its test is: `tests/it/<file>.rs` for
/// `file::name`, the source file for `crates/<crate>/src/path.rs::name`.
fn location(root: &Path, reference: &str) -> (PathBuf, String) {
    let (file, name) = reference
        .rsplit_once("::")
        .unwrap_or_else(|| panic!("`{reference}` is not `file::test_name`"));
    let path = if file.starts_with("crates/") {
        root.join(file)
    } else {
        root.join("tests/it").join(format!("{file}.rs"))
    };
    (path, name.to_string())
}

#[test]
fn every_test_the_adversarial_table_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = std::fs::read_to_string(root.join("tests/ADVERSARIAL.md")).unwrap();
    let named = named_tests(&table);
    assert!(
        named.len() >= 40,
        "the table names only {} tests",
        named.len()
    );
    let mut missing = Vec::new();
    for reference in &named {
        let (path, name) = location(root, reference);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.contains(&format!("fn {name}(")) {
            missing.push(reference.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "named in tests/ADVERSARIAL.md but not found: {missing:#?}"
    );
}

#[test]
fn a_reference_names_its_file_and_test() {
    let root = Path::new("/r");
    assert_eq!(
        location(root, "security_fetch::endless"),
        (
            PathBuf::from("/r/tests/it/security_fetch.rs"),
            "endless".to_string()
        )
    );
    assert_eq!(
        location(root, "crates/kmigrate-builder/src/user.rs::fifo"),
        (
            PathBuf::from("/r/crates/kmigrate-builder/src/user.rs"),
            "fifo".to_string()
        )
    );
    assert_eq!(
        named_tests("| a | b | `x::y` |\n| c | `d::e` |\nno row `f::g`\n"),
        ["x::y", "d::e"]
    );
}
