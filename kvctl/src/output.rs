//! `-o json`: every command prints exactly one JSON document on stdout. A command whose
//! output is a collection (the rows of its table: `list`, `smembers`, `member ...`,
//! `keyspace ...`, `fault ...`) prints one array; every other command prints one object.
//! kvctl has no streaming command, so it never prints JSON lines. An array is written
//! element by element as it is produced (`list` pages through the server), so a long
//! listing never sits in memory and is still one document.

use std::io::{self, Write};

use serde_json::Value as Json;

/// One JSON document (an object) on a line of its own.
pub fn print_json(out: &mut impl Write, value: &Json) {
    let _ = writeln!(out, "{value}");
}

/// A collection as one JSON array.
pub fn print_json_array<'a>(out: &mut impl Write, values: impl IntoIterator<Item = &'a Json>) {
    let mut array = JsonArray::new(out);
    for value in values {
        if array.push(value).is_err() {
            return;
        }
    }
    let _ = array.finish();
}

/// One JSON array written element by element: `[`, the elements one per line with commas
/// between them, `]`. Nothing is written before the first element (or [`JsonArray::finish`]),
/// so a command that fails before it has anything to print leaves stdout empty.
pub struct JsonArray<W: Write> {
    out: W,
    started: bool,
}

impl<W: Write> JsonArray<W> {
    pub fn new(out: W) -> Self {
        Self { out, started: false }
    }

    pub fn push(&mut self, value: &Json) -> io::Result<()> {
        let before = if self.started { ",\n" } else { "[\n" };
        self.started = true;
        write!(self.out, "{before}{value}")
    }

    /// Closes the array (`[]` when nothing was pushed).
    pub fn finish(mut self) -> io::Result<()> {
        if self.started {
            writeln!(self.out, "\n]")?;
        } else {
            writeln!(self.out, "[]")?;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(values: &[Json]) -> String {
        let mut out = Vec::new();
        print_json_array(&mut out, values);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn arrays_are_one_document_with_an_element_per_line() {
        assert_eq!(written(&[]), "[]\n");
        assert_eq!(written(&[json!({"a": 1})]), "[\n{\"a\":1}\n]\n");
        let text = written(&[json!(1), json!("two"), json!({"three": [3]})]);
        assert_eq!(text, "[\n1,\n\"two\",\n{\"three\":[3]}\n]\n");
        let parsed: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, json!([1, "two", {"three": [3]}]));
    }

    #[test]
    fn nothing_is_written_before_the_first_element() {
        let mut out = Vec::new();
        {
            let _unfinished = JsonArray::new(&mut out);
        }
        assert!(out.is_empty(), "a listing that fails at once prints nothing");
    }
}
