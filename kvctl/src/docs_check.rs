//! The docs name only kvctl commands, flags and cluster-status fields that exist.
//!
//! This module owns two checks over `README.md` and every `docs/*.md` (read when the tests
//! run, so a new page is checked too):
//!
//! - **Command lines.** A kvctl command line is a line of a code block, or an inline `code`
//!   span, that runs `kvctl ...` (or `target/debug/kvctl ...`, or `cargo run ... -p kvctl --
//!   ...`), each command in the command column of a `## kvctl` section's table (written
//!   without `kvctl`), and each flag on a `Global flags:` line. Each is resolved against
//!   kvctl's own clap definition ([`Cli`]): every subcommand exists, every `--flag` / `-x`
//!   exists on that subcommand or globally, a value given to a flag or argument with a
//!   fixed set of values is one of them, and no command gets more arguments than it takes.
//!   Usage notation is understood: placeholders in upper case (`PREFIX`, `ID`),
//!   `[optional]` brackets, `MEMBER...`, and `a|b` alternatives (each is checked).
//! - **Cluster-status fields.** In a paragraph or table row that names `kvctl cluster
//!   status`, `member list` or `Admin.ClusterStatus`, every backticked lower-case name
//!   (`outbox_depth`, `lag`) is a field of `ClusterStatusResponse` in
//!   `proto/edgekv/v1/kv.proto`, of a message it holds (members, the `cache` section and
//!   its peers), or a value those messages' comments spell in quotes (a member's role,
//!   `"leader"`). In a table row the first cell names the thing described (a command, a
//!   setting) and is not checked.
//!
//! A failure names the doc file and line, the command line, and what does not exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::{Arg, Command, CommandFactory as _};

use crate::Cli;

/// A doc page: its path from the repository root, and its text.
struct Doc {
    name: String,
    text: String,
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `README.md` and every `docs/*.md`.
fn docs() -> Vec<Doc> {
    let root = repository_root();
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

    /// A table row's spans outside its first cell, or a paragraph's spans.
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

/// A shell word: its text without quotes, and whether any of it was quoted.
#[derive(Clone, Debug)]
struct Word {
    text: String,
    quoted: bool,
}

/// Splits a command line as a POSIX shell would (quotes and backslashes; nothing else).
fn shell_words(line: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let word = || Word {
            text: String::new(),
            quoted: false,
        };
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.get_or_insert_with(word).text.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                current.get_or_insert_with(word).quoted = true;
            }
            None if c.is_whitespace() => words.extend(current.take()),
            None if c == '\\' => current.get_or_insert_with(word).text.extend(chars.next()),
            None => current.get_or_insert_with(word).text.push(c),
        }
    }
    words.extend(current);
    words
}

/// A code-block line up to a pipe, `&&`, `;` or a comment.
fn first_shell_command(words: Vec<Word>) -> Vec<Word> {
    words
        .into_iter()
        .take_while(|w| w.quoted || !(matches!(w.text.as_str(), "|" | "||" | "&&" | ";") || w.text.starts_with('#')))
        .collect()
}

/// The words after the program when `words` run kvctl: `kvctl ...`, `target/debug/kvctl
/// ...` or `cargo run ... -p kvctl -- ...`, after any `VAR=value` words.
fn kvctl_arguments(words: &[Word]) -> Option<&[Word]> {
    let is_assignment = |w: &Word| {
        w.text
            .split_once('=')
            .is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
    };
    let words = &words[words.iter().position(|w| !is_assignment(w))?..];
    let program = words.first()?;
    if !program.quoted && (program.text == "kvctl" || program.text.ends_with("/kvctl")) {
        return Some(&words[1..]);
    }
    if program.text == "cargo" && words.get(1)?.text == "run" {
        let dashes = words.iter().position(|w| w.text == "--")?;
        let runs_kvctl = words[..dashes]
            .windows(2)
            .any(|pair| matches!(pair[0].text.as_str(), "-p" | "--package") && pair[1].text == "kvctl");
        return runs_kvctl.then_some(&words[dashes + 1..]);
    }
    None
}

/// A kvctl command line found in a doc.
struct CommandLine {
    line: usize,
    /// As written (for messages).
    shown: String,
    /// The words after `kvctl`.
    arguments: Vec<Word>,
}

fn command_lines(doc: &str) -> Vec<CommandLine> {
    let (code, blocks) = parse(doc);
    let mut found = Vec::new();
    let mut add = |line, shown: &str, words: &[Word]| {
        if let Some(arguments) = kvctl_arguments(words) {
            found.push(CommandLine {
                line,
                shown: shown.trim().to_string(),
                arguments: arguments.to_vec(),
            });
        }
    };
    for (line, text) in &code {
        add(*line, text, &first_shell_command(shell_words(text)));
    }
    for block in &blocks {
        for (line, span) in block.spans() {
            add(line, &span, &shell_words(&span));
        }
        // The command column of kvctl's own table, and the global flags, name commands
        // without `kvctl`.
        let implicit: Vec<(usize, String)> = if block.is_table_row && block.section == "kvctl" {
            spans_of(block.line, first_cell(&block.text))
        } else if block.text.starts_with("Global flags:") {
            block
                .spans()
                .into_iter()
                .filter(|(_, span)| span.starts_with('-'))
                .collect()
        } else {
            Vec::new()
        };
        for (line, span) in implicit {
            let mut words = vec![Word {
                text: "kvctl".into(),
                quoted: false,
            }];
            words.extend(shell_words(&span));
            add(line, &format!("kvctl {span}"), &words);
        }
    }
    found.sort_by_key(|command| command.line);
    found
}

/// A usage word without its notation: `[--ttl` is `--ttl`, `MEMBER...` is `MEMBER`.
fn bare(word: &Word) -> String {
    if word.quoted {
        return word.text.clone();
    }
    let text = word.text.trim_start_matches('[').trim_end_matches(']');
    text.strip_suffix("...").unwrap_or(text).to_string()
}

/// `PREFIX`, `PEER_ADDR`, `MS`: a placeholder, not a literal value.
fn is_placeholder(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_uppercase())
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `kvctl member add`, for messages.
fn command_name(path: &[&Command]) -> String {
    path.iter().map(|c| c.get_name()).collect::<Vec<_>>().join(" ")
}

/// The flag `--long` (or `-short`) on the innermost command of `path`, or a global one of
/// a command above it.
fn find_flag<'a>(path: &[&'a Command], matches: impl Fn(&Arg) -> bool) -> Option<&'a Arg> {
    let (current, above) = path.split_last().expect("a command");
    current.get_arguments().find(|arg| matches(arg)).or_else(|| {
        above
            .iter()
            .flat_map(|c| c.get_arguments())
            .find(|arg| arg.is_global_set() && matches(arg))
    })
}

/// Whether `value` (alternatives `a|b` each) may be given to `arg`; the problem if not.
fn check_value(arg: &Arg, value: &str, what: &str) -> Option<String> {
    let choices = arg.get_possible_values();
    if choices.is_empty() {
        return None;
    }
    let unknown: Vec<&str> = value
        .split('|')
        .filter(|alt| !alt.is_empty() && !is_placeholder(alt) && !choices.iter().any(|c| c.matches(alt, false)))
        .collect();
    (!unknown.is_empty()).then(|| {
        let names: Vec<&str> = choices.iter().map(|c| c.get_name()).collect();
        format!(
            "`{}` is not a value of {what} (one of: {})",
            unknown.join("|"),
            names.join(", ")
        )
    })
}

/// Resolves `words` against the innermost command of `path`; pushes what does not exist.
fn resolve(path: &[&Command], words: &[Word], problems: &mut Vec<String>) {
    let current = *path.last().expect("a command");
    let positionals: Vec<&Arg> = current.get_positionals().collect();
    let mut given = 0;
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        let text = bare(word);
        if text.is_empty() || (!word.quoted && text == "|") {
            continue;
        }
        let flag = (!word.quoted && text.starts_with('-') && text.len() > 1)
            .then(|| text.trim_start_matches('-'))
            .filter(|name| name.starts_with(|c: char| c.is_ascii_alphabetic()));
        if let Some(name) = flag {
            let long = text.starts_with("--");
            let (name, inline_value) = match name.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None if long => (name, None),
                // -ojson: the short flag's value follows it in the same word.
                None => (&name[..1], Some(name[1..].to_string()).filter(|v| !v.is_empty())),
            };
            let arg = if long {
                find_flag(path, |arg| arg.get_long() == Some(name))
            } else {
                find_flag(path, |arg| arg.get_short().is_some_and(|c| c.to_string() == name))
            };
            let shown = if long { format!("--{name}") } else { format!("-{name}") };
            let Some(arg) = arg else {
                // Whether a value follows is unknown, so the rest cannot be read.
                problems.push(format!("`{}` has no flag `{shown}`", command_name(path)));
                return;
            };
            if arg.get_action().takes_values() {
                let value = inline_value.or_else(|| rest.next().map(bare));
                if let Some(problem) = value.and_then(|v| check_value(arg, &v, &format!("`{shown}`"))) {
                    problems.push(problem);
                }
            }
        } else if current.has_subcommands() {
            if is_placeholder(&text) {
                return;
            }
            let remaining: Vec<Word> = rest.cloned().collect();
            for name in text.split('|') {
                match current.find_subcommand(name) {
                    Some(sub) => resolve(&[path, &[sub]].concat(), &remaining, problems),
                    None => problems.push(format!("`{}` has no command `{name}`", command_name(path))),
                }
            }
            return;
        } else {
            let arg = positionals.get(given).or_else(|| {
                positionals
                    .last()
                    .filter(|last| last.get_num_args().is_some_and(|n| n.max_values() > 1))
            });
            given += 1;
            match arg {
                Some(arg) => {
                    let what = format!("{} of `{}`", arg.get_id(), command_name(path));
                    problems.extend(check_value(arg, &text, &what));
                }
                None => problems.push(format!(
                    "`{}` takes {} argument(s); `{text}` is one too many",
                    command_name(path),
                    positionals.len()
                )),
            }
        }
    }
}

/// kvctl's commands, built (so `--help` and the global flags are in place).
fn kvctl() -> Command {
    let mut command = Cli::command();
    command.build();
    command
}

/// Problems of every kvctl command line in `doc`, each with the doc's name and line;
/// and how many command lines were checked.
fn check_command_lines(name: &str, doc: &str) -> (Vec<String>, usize) {
    let kvctl = kvctl();
    let lines = command_lines(doc);
    let mut problems = Vec::new();
    for command in &lines {
        let mut found = Vec::new();
        resolve(&[&kvctl], &command.arguments, &mut found);
        for problem in found {
            problems.push(format!("{name}:{}: `{}`: {problem}", command.line, command.shown));
        }
    }
    (problems, lines.len())
}

/// A message of a .proto file.
#[derive(Default)]
struct Message {
    /// (name, type) of each field, oneof members included.
    fields: Vec<(String, String)>,
    /// The words its comments spell in double quotes: `"leader"`.
    quoted: BTreeSet<String>,
}

/// The messages of a .proto file, by name.
fn proto_messages(proto: &str) -> BTreeMap<String, Message> {
    let mut messages: BTreeMap<String, Message> = BTreeMap::new();
    // Enclosing blocks: a message's name, or None for a oneof, an enum or a service.
    let mut open: Vec<Option<String>> = Vec::new();
    for line in proto.lines() {
        let (code, comment) = line.split_once("//").unwrap_or((line, ""));
        let code = code.trim();
        if let Some(name) = open.iter().rev().flatten().next() {
            let message = messages.entry(name.clone()).or_default();
            message
                .quoted
                .extend(comment.split('"').skip(1).step_by(2).map(str::to_string));
            if let Some((declaration, _)) = code.split_once('=')
                && code.ends_with(';')
                && let [.., kind, field] = declaration.split_whitespace().collect::<Vec<_>>()[..]
            {
                message.fields.push((field.to_string(), kind.to_string()));
            }
        }
        if code.ends_with('{') {
            let mut words = code.split_whitespace();
            open.push((words.next() == Some("message")).then(|| words.next().unwrap_or_default().to_string()));
        } else if code == "}" {
            open.pop();
        }
    }
    messages
}

/// The field names of `root` and of every message it holds, and the values their comments
/// spell in quotes.
fn names_under(proto: &str, root: &str) -> BTreeSet<String> {
    let messages = proto_messages(proto);
    let mut names = BTreeSet::new();
    let mut pending = vec![root.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        let Some(message) = messages.get(&name).filter(|_| seen.insert(name.clone())) else {
            continue;
        };
        names.extend(message.quoted.iter().cloned());
        for (field, kind) in &message.fields {
            names.insert(field.clone());
            pending.push(kind.clone());
        }
    }
    names
}

/// `outbox_depth`, `lag`: a lower-case field-like name.
fn is_field_name(span: &str) -> bool {
    span.starts_with(|c: char| c.is_ascii_lowercase())
        && span
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Whether a block talks about the cluster status (so its field names are checked).
fn names_cluster_status(block: &Block) -> bool {
    block.spans().iter().any(|(_, span)| {
        matches!(
            span.as_str(),
            "cluster status" | "kvctl cluster status" | "member list" | "kvctl member list"
        ) || span.starts_with("Admin.ClusterStatus")
    })
}

/// Problems of every cluster-status field named in `doc`; and how many names were checked.
fn check_cluster_status_fields(name: &str, doc: &str, fields: &BTreeSet<String>) -> (Vec<String>, usize) {
    let (_, blocks) = parse(doc);
    let mut problems = Vec::new();
    let mut checked = 0;
    for block in blocks.iter().filter(|b| names_cluster_status(b)) {
        for (line, span) in block.described_spans() {
            if !is_field_name(&span) {
                continue;
            }
            checked += 1;
            if !fields.contains(&span) {
                problems.push(format!(
                    "{name}:{line}: `{span}` is named as a cluster status field, but neither \
                     ClusterStatusResponse nor a message in it (proto/edgekv/v1/kv.proto) has it"
                ));
            }
        }
    }
    (problems, checked)
}

fn cluster_status_fields() -> BTreeSet<String> {
    let path = repository_root().join("proto/edgekv/v1/kv.proto");
    let proto = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    names_under(&proto, "ClusterStatusResponse")
}

#[test]
fn every_kvctl_command_and_flag_in_the_docs_exists() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in docs() {
        let (found, count) = check_command_lines(&doc.name, &doc.text);
        problems.extend(found);
        checked += count;
    }
    assert!(
        problems.is_empty(),
        "the docs name kvctl commands, flags or values that kvctl does not have:\n{}",
        problems.join("\n")
    );
    assert!(
        checked >= 30,
        "only {checked} kvctl command lines found in the docs: is the parser broken?"
    );
}

#[test]
fn every_cluster_status_field_in_the_docs_exists() {
    let fields = cluster_status_fields();
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in docs() {
        let (found, count) = check_cluster_status_fields(&doc.name, &doc.text, &fields);
        problems.extend(found);
        checked += count;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        checked >= 20,
        "only {checked} cluster status fields found in the docs: is the parser broken?"
    );
}

#[test]
fn the_checks_catch_what_does_not_exist() {
    let doc = "\
Run `kvctl frobnicate --nope` or `kvctl get KEY --consistency strong|sometimes`.

```sh
kvctl --endpoint http://127.0.0.1:PORT cluster status --verbose   # a comment --ignored
cargo run -q -p kvctl -- put users/42 ada extra
```

## kvctl

| command | |
|---|---|
| `member add ID REGION PEER_ADDR [--learner] [--voter]` | |

Global flags: `--endpoint`, `--colour`.

`kvctl cluster status` prints `outbox_depth` and `outbox_width`.
";
    let (problems, _) = check_command_lines("x.md", doc);
    let expected = [
        "x.md:1: `kvctl frobnicate --nope`: `kvctl` has no command `frobnicate`",
        "x.md:1: `kvctl get KEY --consistency strong|sometimes`: `sometimes` is not a value of `--consistency` \
         (one of: strong, eventual)",
        "x.md:4: `kvctl --endpoint http://127.0.0.1:PORT cluster status --verbose   # a comment --ignored`: \
         `kvctl cluster status` has no flag `--verbose`",
        "x.md:5: `cargo run -q -p kvctl -- put users/42 ada extra`: `kvctl put` takes 2 argument(s); `extra` is one \
         too many",
        "x.md:12: `kvctl member add ID REGION PEER_ADDR [--learner] [--voter]`: `kvctl member add` has no flag \
         `--voter`",
        "x.md:14: `kvctl --colour`: `kvctl` has no flag `--colour`",
    ];
    assert_eq!(problems, expected);

    let fields = cluster_status_fields();
    let (problems, checked) = check_cluster_status_fields("x.md", doc, &fields);
    assert_eq!(checked, 2);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("x.md:16: `outbox_width` is named"),
        "{problems:?}"
    );
}

#[test]
fn member_roles_and_the_cache_section_are_cluster_status_names() {
    let fields = cluster_status_fields();
    for name in [
        "leader_id",
        "members",
        "lag",
        "learner",
        "cache",
        "outbox_depth",
        "inbound_lag_ms",
    ] {
        assert!(fields.contains(name), "{name} not found in {fields:?}");
    }
    assert!(!fields.contains("staleness_ms"), "a field of another message");
}
