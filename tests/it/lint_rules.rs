//! `kmigrate rules`, `kmigrate explain` and colour handling.

use std::process::{Command, Output};

fn kmigrate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kmigrate"));
    c.args(args)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("kmigrate runs")
}

#[test]
fn rules_lists_every_rule() {
    let o = kmigrate(&["rules"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(id) = name.strip_suffix(".md") {
            assert!(text.contains(&format!("\n{id} ")), "{id} missing:\n{text}");
        }
    }
    snapshot!("lint_rules", text);
}

#[test]
fn explain_renders_the_page() {
    let o = kmigrate(&["explain", "km002"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "not a terminal: no colour");
    assert!(!text.contains("```"), "fences are rendered");
    assert!(text.contains("/rules/KM002.md"));
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/KM002.md")).unwrap();
    // Every heading of the page is there, without its `#` marks.
    for heading in page.lines().filter(|l| l.starts_with('#')) {
        let title = heading.trim_start_matches('#').trim();
        assert!(text.lines().any(|l| l == title), "{title} missing:\n{text}");
    }
    // The full rendering is snapshotted on a short page (KM002's text
    // changes with the GitLab rewrite's docs).
    let o = kmigrate(&["explain", "KM020"], &[]);
    snapshot!("lint_explain_km020", String::from_utf8(o.stdout).unwrap());
    let o = kmigrate(&["explain", "KM999"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("KM001"));
}

#[test]
fn colour_is_forced_by_clicolor_force_and_no_color_wins() {
    let o = kmigrate(&["explain", "KM001"], &[("CLICOLOR_FORCE", "1")]);
    assert!(String::from_utf8_lossy(&o.stdout).contains('\u{1b}'));
    let o = kmigrate(
        &["explain", "KM001"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains('\u{1b}'));
}
