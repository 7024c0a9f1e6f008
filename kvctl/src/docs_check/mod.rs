//! The docs name only kvctl commands, flags and cluster-status fields that exist.
//!
//! Two checks run over `README.md` and every `docs/*.md` (read when the tests run, so a new
//! page is checked too): [`commands`] resolves every kvctl command line against kvctl's clap
//! definition, and [`status_fields`] matches every field named for `cluster status` or
//! `member list` against the keys kvctl prints. This module owns what they share: reading
//! the pages and splitting one into code-block lines, paragraphs, table rows and inline code
//! spans; and the test that both checks catch bad input.
//!
//! A failure names the doc file and line, and what does not exist.

mod commands;
mod status_fields;

use std::path::{Path, PathBuf};

/// A doc page: its path from the repository root, and its text.
struct Doc {
    name: String,
    text: String,
}

/// `README.md` and every `docs/*.md`.
fn docs() -> Vec<Doc> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("the docs/ directory")
        .map(|entry| entry.expect("an entry of docs/").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    pages.insert(0, root.join("README.md"));
    pages
        .into_iter()
        .map(|path| Doc {
            name: path.strip_prefix(&root).expect("under the root").display().to_string(),
            text: std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        })
        .collect()
}

/// Runs `check` (problems and how many things it checked, for one page) over every doc
/// page: all the problems, and the total checked.
fn check_every_page(check: impl Fn(&str, &str) -> (Vec<String>, usize)) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in docs() {
        let (found, count) = check(&doc.name, &doc.text);
        problems.extend(found);
        checked += count;
    }
    (problems, checked)
}

/// Markdown outside code blocks: a paragraph (lines up to a blank line, headings included)
/// or one table row.
struct Block {
    /// 1-based line of the block's first line.
    line: usize,
    text: String,
    is_table_row: bool,
    /// The `## ` section the block is in.
    section: String,
}

impl Block {
    fn spans(&self) -> Vec<(usize, String)> {
        spans_of(self.line, &self.text)
    }

    /// A table row's spans outside its first cell (which names the thing described), or a
    /// paragraph's spans.
    fn described_spans(&self) -> Vec<(usize, String)> {
        if self.is_table_row {
            spans_of(self.line, &self.text[first_cell(&self.text).len()..])
        } else {
            self.spans()
        }
    }
}

/// The inline code spans of markdown text starting at `line`, each with its line and its
/// text on one line.
fn spans_of(mut line: usize, text: &str) -> Vec<(usize, String)> {
    let mut spans = Vec::new();
    for (index, piece) in text.split('`').enumerate() {
        if index % 2 == 1 {
            spans.push((line, piece.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
        line += piece.matches('\n').count();
    }
    spans
}

/// A table row up to the end of its first cell (a `|` outside code spans).
fn first_cell(row: &str) -> &str {
    let mut in_span = false;
    for (at, c) in row.char_indices().skip(1) {
        match c {
            '`' => in_span = !in_span,
            '|' if !in_span => return &row[..at],
            _ => {}
        }
    }
    row
}

/// Splits a page into its code-block lines (numbered) and its other blocks.
fn parse(text: &str) -> (Vec<(usize, String)>, Vec<Block>) {
    let mut code = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut in_code = false;
    let mut section = String::new();
    let mut paragraph: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            blocks.extend(paragraph.take());
            continue;
        }
        if in_code {
            code.push((number, line.to_string()));
            continue;
        }
        if let Some(title) = trimmed.strip_prefix("## ") {
            section = title.to_string();
        }
        if trimmed.is_empty() || trimmed.starts_with('|') {
            blocks.extend(paragraph.take());
        }
        if trimmed.starts_with('|') {
            blocks.push(Block {
                line: number,
                text: trimmed.to_string(),
                is_table_row: true,
                section: section.clone(),
            });
        } else if !trimmed.is_empty() {
            match &mut paragraph {
                Some(block) => {
                    block.text.push('\n');
                    block.text.push_str(line);
                }
                None => {
                    paragraph = Some(Block {
                        line: number,
                        text: line.to_string(),
                        is_table_row: false,
                        section: section.clone(),
                    })
                }
            }
        }
    }
    blocks.extend(paragraph);
    (code, blocks)
}

#[test]
fn the_checks_catch_what_does_not_exist() {
    let doc = "\
Run `kvctl frobnicate --nope` or `kvctl get KEY --consistency strong|sometimes`.
Pipes and redirections are not arguments: `kvctl list -o json | head -n 3 > out.json`;
each command of a chain is one: `kvctl status && kvctl frobnicate; echo done`.

```sh
kvctl --endpoint http://127.0.0.1:PORT cluster status --verbose   # a comment --ignored
cargo run -q -p kvctl -- put users/42 ada extra
$ kvctl frobnicate
sudo kvctl status extra
kvctl --endpoint http://127.0.0.1:PORT \\
  member add 4 eu 10.0.0.4:7080 --voter
```

## kvctl

| command | |
|---|---|
| `member add ID REGION PEER_ADDR [--learner] [--voter]` | |
| `list [--prefix KEY | --from KEY]` | |

Global flags: `--endpoint`, `--colour`.

`kvctl cluster status -o json` prints `outbox_depth`, `clock_skew_refusal` and each
member's `role` (`leader`); `json`, `kvctl`, `status` and `member` are not fields.
";
    let (problems, _) = commands::check("x.md", doc);
    let expected = [
        "x.md:1: `kvctl frobnicate --nope`: `kvctl` has no command `frobnicate`",
        "x.md:1: `kvctl get KEY --consistency strong|sometimes`: `sometimes` is not a value of `--consistency` \
         (one of: strong, eventual)",
        "x.md:3: `kvctl status && kvctl frobnicate; echo done`: `kvctl` has no command `frobnicate`",
        "x.md:6: `kvctl --endpoint http://127.0.0.1:PORT cluster status --verbose   # a comment --ignored`: \
         `kvctl cluster status` has no flag `--verbose`",
        "x.md:7: `cargo run -q -p kvctl -- put users/42 ada extra`: `kvctl put` takes 2 argument(s); `extra` is one \
         too many",
        "x.md:8: `$ kvctl frobnicate`: `kvctl` has no command `frobnicate`",
        "x.md:9: `sudo kvctl status extra`: `kvctl status` takes 0 argument(s); `extra` is one too many",
        "x.md:10: `kvctl --endpoint http://127.0.0.1:PORT member add 4 eu 10.0.0.4:7080 --voter`: \
         `kvctl member add` has no flag `--voter`",
        "x.md:18: `kvctl member add ID REGION PEER_ADDR [--learner] [--voter]`: `kvctl member add` has no flag \
         `--voter`",
        "x.md:19: `kvctl list [--prefix KEY | --from KEY]`: `kvctl list` has no flag `--from`",
        "x.md:21: `kvctl --colour`: `kvctl` has no flag `--colour`",
    ];
    assert_eq!(problems, expected);

    let (problems, checked) = status_fields::check("x.md", doc);
    assert_eq!(checked, 4, "outbox_depth, clock_skew_refusal, role, leader");
    assert_eq!(
        problems,
        ["x.md:23: `clock_skew_refusal` is named as a cluster status field, but kvctl prints no such key"]
    );
}
