// Embedded migrations and default templates are read at compile time: rebuild when they
// change, and generate the table of default templates from the files present.
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=templates");
    let mut table = String::from(
        "/// (language, key, part, source) of every default template file.\npub const DEFAULT_TEMPLATES: &[(&str, &str, &str, &str)] = &[\n",
    );
    let root = Path::new("templates/defaults");
    let mut files = Vec::new();
    if let Ok(langs) = std::fs::read_dir(root) {
        for lang in langs.flatten() {
            if let Ok(entries) = std::fs::read_dir(lang.path()) {
                for entry in entries.flatten() {
                    files.push(entry.path());
                }
            }
        }
    }
    files.sort();
    // Without them the binary would build but every organisation would lack its templates
    // (a container build that forgot to copy `templates/`, for instance).
    assert!(
        !files.is_empty(),
        "no default templates found under templates/defaults: the build needs that folder"
    );
    for path in files {
        let (Some(lang), Some(name)) = (
            path.parent().and_then(|p| p.file_name()).and_then(|s| s.to_str()),
            path.file_name().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".j2") else { continue };
        let Some((key, part)) = stem.rsplit_once('.') else {
            continue;
        };
        let absolute = std::fs::canonicalize(&path).unwrap_or(path.clone());
        let _ = writeln!(
            table,
            "    ({lang:?}, {key:?}, {part:?}, include_str!({:?})),",
            absolute.display().to_string()
        );
    }
    table.push_str("];\n");
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    let _ = std::fs::write(Path::new(&out).join("default_templates.rs"), table);
}
