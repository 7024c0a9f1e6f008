//! Which consistency class a key is in: the rule type and the longest-prefix algorithm,
//! in one place for the server (which decides) and the SDK (which routes by the rules it
//! fetched), so the two can never disagree about a key.
//!
//! Rules map encoded key prefixes to classes. The longest matching prefix decides; the
//! empty prefix is the default rule; without one, keys are strong (as in Deno KV). Because
//! tuple-encoded parts are self-delimiting, a byte prefix of encoded keys is a tuple
//! prefix: the rule for `["cache"]` covers `["cache", ...]` and nothing else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Key;

/// A key's consistency class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Class {
    /// Replicated through Raft: linearizable, checks and versionstamps.
    Strong,
    /// Multi-master, merged by CRDT rules.
    Cache,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Strong => "strong",
            Class::Cache => "cache",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "strong" => Some(Class::Strong),
            "cache" => Some(Class::Cache),
            _ => None,
        }
    }
}

/// Class rules: encoded key prefix -> class.
pub type Rules = BTreeMap<Vec<u8>, Class>;

/// The class of `key` under `rules`: its longest matching prefix's, else strong. Every
/// prefix of a key sorts at or before it, and a longer prefix after a shorter one, so the
/// first match walking back from the key is the longest.
pub fn class_of(rules: &Rules, key: &[u8]) -> Class {
    rules
        .range(..=key.to_vec())
        .rev()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map_or(Class::Strong, |(_, class)| *class)
}

/// Which classes keys in `[start, end)` can have (`end` empty: unbounded), as
/// `(strong, cache)`.
pub fn classes_in(rules: &Rules, start: &[u8], end: &[u8]) -> (bool, bool) {
    let inside = |key: &[u8]| key > start && (end.is_empty() || key < end);
    let mut classes = vec![class_of(rules, start)];
    // Where a rule's keys start inside the range its class begins, and where they end
    // inside it whatever encloses it resumes (another rule's class, or the default).
    for (prefix, class) in rules {
        if inside(prefix) {
            classes.push(*class);
        }
        if let Some(after) = Key::prefix_successor(prefix)
            && inside(&after)
        {
            classes.push(class_of(rules, &after));
        }
    }
    (classes.contains(&Class::Strong), classes.contains(&Class::Cache))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_prefix_decides_and_unmatched_keys_are_strong() {
        let mut rules: Rules = [
            (b"a".to_vec(), Class::Cache),
            (b"ab".to_vec(), Class::Strong),
            (b"abc".to_vec(), Class::Cache),
        ]
        .into();
        assert_eq!(class_of(&rules, b"b"), Class::Strong);
        assert_eq!(class_of(&rules, b"a"), Class::Cache);
        assert_eq!(class_of(&rules, b"aa"), Class::Cache);
        assert_eq!(class_of(&rules, b"abz"), Class::Strong);
        assert_eq!(class_of(&rules, b"abcd"), Class::Cache);
        rules.insert(Vec::new(), Class::Cache);
        assert_eq!(class_of(&rules, b"b"), Class::Cache, "the empty prefix is the default");
        assert_eq!(class_of(&rules, b"abz"), Class::Strong);
    }

    #[test]
    fn a_range_meets_every_class_that_begins_or_resumes_inside_it() {
        let rules: Rules = [
            (b"a".to_vec(), Class::Cache),
            (b"ab".to_vec(), Class::Strong),
            (b"abc".to_vec(), Class::Cache),
        ]
        .into();
        assert_eq!(classes_in(&rules, b"b", b"c"), (true, false));
        assert_eq!(classes_in(&rules, b"aa", b"b"), (true, true));
        // Starting inside a nested rule and running past its end meets the class that
        // resumes after it.
        assert_eq!(classes_in(&rules, b"abcd", b"b"), (true, true));
        assert_eq!(classes_in(&rules, b"abcd", b"abc\xff"), (false, true));
        assert_eq!(
            classes_in(&rules, b"abcd", b"abd"),
            (false, true),
            "abd is where ab resumes"
        );
        assert_eq!(classes_in(&rules, b"abcd", b"abda"), (true, true));
        assert_eq!(
            classes_in(&rules, b"abcd", b""),
            (true, true),
            "an empty end is unbounded"
        );
        let everything: Rules = [(Vec::new(), Class::Cache)].into();
        assert_eq!(classes_in(&everything, b"", b""), (false, true));
    }

    #[test]
    fn classes_have_stable_names() {
        for class in [Class::Strong, Class::Cache] {
            assert_eq!(Class::parse(class.as_str()), Some(class));
        }
        assert_eq!(Class::parse("eventual"), None);
    }
}
