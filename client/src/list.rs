//! Range reads as an async stream. The stream asks the server for one page at a time and
//! follows its cursor, so a million-key range never sits in memory on either side.

use edgekv_proto::Key;
use edgekv_proto::limits::MAX_LIST_PAGE;
use edgekv_proto::v1 as pb;
use futures::Stream;

use crate::error::{Error, Result};
use crate::routing::Route;
use crate::value::{Entry, ServedBy};
use crate::{Client, Consistency};

/// Which keys to list, as in Deno KV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Every key strictly under the prefix (an empty key lists everything).
    Prefix(Key),
    /// Keys under the prefix, from `start` on.
    PrefixFrom { prefix: Key, start: Key },
    /// Keys under the prefix, before `end`.
    PrefixUntil { prefix: Key, end: Key },
    /// Keys in `[start, end)`.
    Range { start: Key, end: Key },
}

impl Selector {
    pub fn prefix(prefix: impl Into<Key>) -> Self {
        Selector::Prefix(prefix.into())
    }

    pub fn range(start: impl Into<Key>, end: impl Into<Key>) -> Self {
        Selector::Range {
            start: start.into(),
            end: end.into(),
        }
    }

    /// The (prefix, start, end) fields of a list request.
    fn to_wire(&self) -> [Option<Vec<u8>>; 3] {
        match self {
            Selector::Prefix(p) => [Some(p.encode()), None, None],
            Selector::PrefixFrom { prefix, start } => [Some(prefix.encode()), Some(start.encode()), None],
            Selector::PrefixUntil { prefix, end } => [Some(prefix.encode()), None, Some(end.encode())],
            Selector::Range { start, end } => [None, Some(start.encode()), Some(end.encode())],
        }
    }
}

#[must_use = "a list does nothing until its stream is polled"]
pub struct List {
    client: Client,
    selector: Selector,
    limit: Option<usize>,
    batch_size: usize,
    reverse: bool,
    keys_only: bool,
    consistency: Consistency,
    cursor: String,
}

impl List {
    pub(crate) fn new(client: Client, selector: Selector) -> Self {
        Self {
            client,
            selector,
            limit: None,
            batch_size: 100,
            reverse: false,
            keys_only: false,
            consistency: Consistency::Strong,
            cursor: String::new(),
        }
    }

    /// Stops after this many entries in total.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Entries fetched per round trip (at most 1000).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.clamp(1, MAX_LIST_PAGE);
        self
    }

    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }

    /// Returns keys and versionstamps without values.
    pub fn keys_only(mut self, keys_only: bool) -> Self {
        self.keys_only = keys_only;
        self
    }

    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// Resumes after the entry a previous listing ended with (see [`List::page`]).
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = cursor.into();
        self
    }

    /// One page: up to `batch_size` entries and the cursor of the next page (`None` at
    /// the end). For callers that hand cursors to their own clients, as Workers KV does.
    pub async fn page(&self) -> Result<(Vec<Entry>, Option<String>)> {
        if self.limit == Some(0) {
            return Ok((Vec::new(), None));
        }
        let [prefix, start, end] = self.selector.to_wire();
        let size = self.limit.map_or(self.batch_size, |l| l.min(self.batch_size)).max(1);
        let request = pb::ListRequest {
            prefix,
            start,
            end,
            limit: size as u32,
            reverse: self.reverse,
            cursor: self.cursor.clone(),
            keys_only: self.keys_only,
            consistency: self.consistency.to_wire(),
        };
        let client = &self.client;
        let route = match self.consistency {
            crate::Consistency::Eventual => Route::Local,
            crate::Consistency::Strong => {
                let rules = client.keyspace_rules().await;
                let (start, end) = crate::keyspace::selector_range(
                    request.prefix.as_deref(),
                    request.start.as_deref(),
                    request.end.as_deref(),
                );
                if crate::keyspace::range_is_cache(&rules, &start, &end) {
                    Route::Local
                } else {
                    Route::Leader
                }
            }
        };
        let response = client
            .read(route, |mut kv| {
                let request = client.request(request.clone());
                async move { kv.list(request).await }
            })
            .await?;
        let served_by = ServedBy::from_wire(response.read);
        let entries = response
            .entries
            .into_iter()
            .map(|e| Entry::from_wire(e, served_by.clone()))
            .collect::<Result<_>>()?;
        Ok((entries, Some(response.cursor).filter(|c| !c.is_empty())))
    }

    /// All matching entries, fetched page by page as the stream is polled.
    pub fn stream(self) -> impl Stream<Item = Result<Entry>> + Send {
        futures::stream::try_unfold((self, false, 0usize), |(mut list, done, yielded)| async move {
            if done || list.limit.is_some_and(|l| yielded >= l) {
                return Ok::<_, Error>(None);
            }
            if let Some(limit) = list.limit {
                list.batch_size = list.batch_size.min(limit - yielded);
            }
            let (entries, next) = list.page().await?;
            let done = match next {
                Some(cursor) => {
                    list.cursor = cursor;
                    entries.is_empty()
                }
                None => true,
            };
            let count = entries.len();
            Ok(Some((
                futures::stream::iter(entries.into_iter().map(Ok::<Entry, Error>)),
                (list, done, yielded + count),
            )))
        })
        .try_flatten()
    }
}

use futures::TryStreamExt as _;
