//! Converts the data tables in `rules/` from YAML, the form people edit, to
//! JSON in `OUT_DIR`, the form the binary reads: parsing the YAML at run
//! time cost a one-file `check` about a millisecond, a fifth of its time.
//! The conversion is value for value; the tests still read the YAML itself.

use std::path::Path;

const TABLES: &[&str] = &["images", "kaniko-flags"];

fn main() {
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    for name in TABLES {
        let source = format!("../../rules/{name}.yaml");
        println!("cargo::rerun-if-changed={source}");
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("cannot read {source}: {e}"));
        let value: serde_json::Value = yaml_serde::from_str(&text)
            .unwrap_or_else(|e| panic!("{source} is not valid YAML: {e}"));
        let json = serde_json::to_string(&value).expect("a JSON value serialises");
        let target = Path::new(&out).join(format!("{name}.json"));
        std::fs::write(&target, json)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
    }
}
