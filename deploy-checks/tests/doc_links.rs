//! Every relative link in `README.md` and `docs/` leads somewhere: the file
//! or folder exists, and an anchor names a heading of its target as GitHub
//! writes heading ids.

use std::path::{Path, PathBuf};

use deploy_checks::manifests::repo_root;
use regex::Regex;

/// `README.md` and every Markdown file under `docs/`.
fn documents() -> Vec<PathBuf> {
    let root = repo_root();
    let mut documents = vec![root.join("README.md")];
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/ exists");
    for entry in docs {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    documents.sort();
    documents
}

/// The lines of a Markdown text outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's id for a heading: lower case, punctuation other than `-` and `_`
/// dropped, spaces as `-`; a repeated id gets `-1`, `-2`, … in order.
fn heading_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for line in prose(text) {
        let Some(heading) = line.strip_prefix('#').map(|h| h.trim_start_matches('#')) else {
            continue;
        };
        if !heading.starts_with(' ') {
            continue;
        }
        let base: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let repeats = ids
            .iter()
            .filter(|id| {
                **id == base
                    || id
                        .strip_prefix(&format!("{base}-"))
                        .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .count();
        ids.push(if repeats == 0 {
            base
        } else {
            format!("{base}-{repeats}")
        });
    }
    ids
}

/// Every relative link of `document` that leads nowhere, with why.
fn broken_links(document: &Path) -> Vec<String> {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let text = std::fs::read_to_string(document).unwrap();
    let mut broken = Vec::new();
    for line in prose(&text) {
        for target in link.captures_iter(line).map(|c| c[1].to_owned()) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                document.to_path_buf()
            } else {
                document.parent().unwrap().join(path)
            };
            if !file.exists() {
                broken.push(format!("{target}: no such file or folder"));
                continue;
            }
            if !anchor.is_empty() {
                let target_text = std::fs::read_to_string(&file).unwrap_or_default();
                if !heading_ids(&target_text).iter().any(|id| id == anchor) {
                    broken.push(format!("{target}: no heading with that id"));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_readme_and_docs_leads_somewhere() {
    let documents = documents();
    assert!(
        documents.len() > 5,
        "README.md and docs/*.md: {documents:?}"
    );
    let broken: Vec<String> = documents
        .iter()
        .flat_map(|document| {
            let name = document
                .strip_prefix(repo_root())
                .unwrap()
                .display()
                .to_string();
            broken_links(document)
                .into_iter()
                .map(move |why| format!("{name}: {why}"))
        })
        .collect();
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn heading_ids_are_github_s() {
    let ids = heading_ids(
        "# Sidecars or ambient: what the trace shows\n```\n# not a heading\n```\n## Why no `jaeger` propagator\n## Tests\n## Tests\n#hashtag\n",
    );
    assert_eq!(
        ids,
        [
            "sidecars-or-ambient-what-the-trace-shows",
            "why-no-jaeger-propagator",
            "tests",
            "tests-1"
        ]
    );
}

#[test]
fn a_link_to_a_missing_file_or_heading_is_reported() {
    let dir = std::env::temp_dir().join(format!("doc-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let document = dir.join("a.md");
    std::fs::write(dir.join("b.md"), "# Here\n").unwrap();
    std::fs::write(
        &document,
        "[ok](b.md#here) [gone](c.md) [no id](b.md#there) [self](#top)\n# Top\n[web](https://example.com/x)\n",
    )
    .unwrap();
    let broken = broken_links(&document);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        broken,
        [
            "c.md: no such file or folder",
            "b.md#there: no heading with that id"
        ]
    );
}
