//! README's parameter table is the range table of `engine::params` (docs/DESIGN.md §11): the
//! ranges are written once, in code, and README shows exactly them.

#[test]
fn readme_parameter_table_is_the_range_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = interneuron_whitening::engine::params::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md must contain the parameter table generated from engine::params::RANGES:\n\n{table}"
    );
}
