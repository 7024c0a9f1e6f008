//! Command lines: every kvctl command, flag and value the docs write exists in kvctl.
//!
//! A kvctl command line is a code-block line, or an inline `code` span, that runs `kvctl
//! ...` (or `target/debug/kvctl ...`, or `cargo run ... -p kvctl -- ...`), after any `$ `
//! prompt, `sudo` and `VAR=value` words; a code-block line ending in `\` goes on with the
//! next one. A line is split into commands at `|`, `||`, `&&`, `;` and `&`, and each one that
//! runs kvctl is checked; a redirection (`>`, `<`) ends a command's arguments. The command
//! column of a `## kvctl` section's table (written without `kvctl`) and the flags on a
//! `Global flags:` line are command lines too.
//!
//! Each is resolved against kvctl's clap definition ([`Cli`]): every subcommand exists,
//! every `--flag` / `-x` exists on that subcommand or globally, a value given to a flag or
//! argument with a fixed set of values is one of them, and no command gets more arguments
//! than it takes. Usage notation is understood: placeholders in upper case (`PREFIX`, `ID`),
//! `[optional]` brackets (a `|` inside them separates alternatives, not commands),
//! `MEMBER...`, and `a|b` alternatives (each is checked).

use std::collections::BTreeSet;

use clap::{Arg, Command, CommandFactory as _};

use super::{first_cell, parse, spans_of};
use crate::Cli;

/// A shell word: its text without quotes, and whether any of it was quoted or escaped.
#[derive(Clone, Debug, Default)]
struct Word {
    text: String,
    quoted: bool,
}

/// What a shell line is made of.
enum Token {
    Word(Word),
    /// `|`, `&&`, `;`, `>`, `2>&1`'s `>&`, ...
    Operator(String),
}

/// Splits a shell line into words and operators (quotes, backslashes and `#` comments as a
/// POSIX shell reads them). A `|` is a pipe only when it stands alone outside `[...]`.
fn tokens(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut current: Option<Word> = None;
    let mut quote: Option<char> = None;
    let mut brackets = 0_usize;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let word = current.get_or_insert_with(Word::default);
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => word.text.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.quoted = true;
            }
            (None, '\\') => {
                word.quoted = true;
                word.text.extend(chars.next());
            }
            (None, '#') if word.text.is_empty() && !word.quoted => {
                current = None;
                break;
            }
            (None, '|')
                if brackets == 0 && word.text.is_empty() && chars.peek().is_none_or(|n| " \t|".contains(*n)) =>
            {
                current = None;
                let pipe = if chars.next_if_eq(&'|').is_some() { "||" } else { "|" };
                tokens.push(Token::Operator(pipe.into()));
            }
            (None, ';' | '&' | '>' | '<') => {
                // In `2>` the digits name a file descriptor: not a word.
                let fd = matches!(c, '>' | '<') && !word.quoted && word.text.chars().all(|d| d.is_ascii_digit());
                if fd {
                    current = None;
                }
                end_word(&mut current, &mut tokens);
                let mut operator = c.to_string();
                while let Some(next) = chars.next_if(|n| ";&><|".contains(*n)) {
                    operator.push(next);
                }
                tokens.push(Token::Operator(operator));
            }
            (None, _) if c.is_whitespace() => end_word(&mut current, &mut tokens),
            (None, _) => {
                brackets = match c {
                    '[' => brackets + 1,
                    ']' => brackets.saturating_sub(1),
                    _ => brackets,
                };
                word.text.push(c);
            }
        }
    }
    end_word(&mut current, &mut tokens);
    tokens
}

/// Ends the word being read, if there is one.
fn end_word(current: &mut Option<Word>, tokens: &mut Vec<Token>) {
    tokens.extend(
        current
            .take()
            .filter(|w| w.quoted || !w.text.is_empty())
            .map(Token::Word),
    );
}

/// The commands of a shell line, each as its words without its redirections.
fn shell_commands(line: &str) -> Vec<Vec<Word>> {
    let mut commands = vec![Vec::new()];
    let mut redirected = false;
    for token in tokens(line) {
        match token {
            Token::Word(word) if !redirected => commands.last_mut().expect("a command").push(word),
            Token::Word(_) => {}
            Token::Operator(op) if op.contains(['>', '<']) => redirected = true,
            Token::Operator(_) => {
                commands.push(Vec::new());
                redirected = false;
            }
        }
    }
    commands
}

/// The words after the program when `words` run kvctl: `kvctl ...`, `target/debug/kvctl
/// ...` or `cargo run ... -p kvctl -- ...`, after any `$`, `sudo` and `VAR=value` words.
fn kvctl_arguments(words: &[Word]) -> Option<&[Word]> {
    let is_prefix = |w: &Word| {
        !w.quoted
            && (w.text == "$"
                || w.text == "sudo"
                || w.text.split_once('=').is_some_and(|(name, _)| {
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                }))
    };
    let words = &words[words.iter().position(|w| !is_prefix(w))?..];
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

/// Code-block lines, a line ending in `\` joined with the next; each numbered by its first
/// line.
fn join_continuations(code: Vec<(usize, String)>) -> Vec<(usize, String)> {
    let mut joined: Vec<(usize, String)> = Vec::new();
    // The number of the line that continues the last one.
    let mut continuation = None;
    for (number, line) in code {
        match joined.last_mut() {
            Some((_, last)) if continuation == Some(number) => *last = format!("{} {}", last.trim_end(), line.trim()),
            _ => joined.push((number, line)),
        }
        let (_, last) = joined.last_mut().expect("a line");
        let kept = last.trim_end().strip_suffix('\\').map(str::to_string);
        continuation = kept.map(|kept| {
            *last = kept;
            number + 1
        });
    }
    joined
}

/// A kvctl command found in a doc.
struct CommandLine {
    line: usize,
    /// The line as written (for messages).
    shown: String,
    /// The words after `kvctl`.
    arguments: Vec<Word>,
}

fn command_lines(doc: &str) -> Vec<CommandLine> {
    let (code, blocks) = parse(doc);
    let mut found = Vec::new();
    let mut add = |line, text: &str| {
        for words in shell_commands(text) {
            if let Some(arguments) = kvctl_arguments(&words) {
                found.push(CommandLine {
                    line,
                    shown: text.trim().to_string(),
                    arguments: arguments.to_vec(),
                });
            }
        }
    };
    for (line, text) in join_continuations(code) {
        add(line, &text);
    }
    for block in &blocks {
        for (line, span) in block.spans() {
            add(line, &span);
        }
        // The command column of kvctl's own table, and the global flags, name commands
        // without `kvctl`.
        let implicit = if block.is_table_row && block.section == "kvctl" {
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
            add(line, &format!("kvctl {span}"));
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
        // `[--prefix KEY | --start KEY]`: the bar between alternatives.
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

/// The names of kvctl's commands at every level and the values its flags and arguments
/// take (`kvctl`, `status`, `json`).
pub(super) fn vocabulary() -> BTreeSet<String> {
    fn add(command: &Command, names: &mut BTreeSet<String>) {
        names.insert(command.get_name().to_string());
        for arg in command.get_arguments() {
            names.extend(arg.get_possible_values().iter().map(|v| v.get_name().to_string()));
        }
        for sub in command.get_subcommands() {
            add(sub, names);
        }
    }
    let mut names = BTreeSet::new();
    add(&kvctl(), &mut names);
    names
}

/// Problems of every kvctl command line in `doc`, each with the doc's name and line;
/// and how many command lines were checked.
pub(super) fn check(name: &str, doc: &str) -> (Vec<String>, usize) {
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

#[test]
fn every_kvctl_command_and_flag_in_the_docs_exists() {
    let (problems, checked) = super::check_every_page(check);
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
