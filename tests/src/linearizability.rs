//! Linearizability checking for histories of a key-value register, recorded by concurrent test
//! clients (the fault suite's checker for the strong consistency class).
//!
//! This module owns three things: the history format ([`Operation`], written by the
//! thread-safe [`Recorder`]), the sequential model of one key (read, write, compare-and-set on
//! a value that starts absent) and the search that decides whether some total order of the
//! operations, consistent with their real-time intervals, explains every result.
//!
//! The search is Wing and Gong's, with Lowe's improvements, as in Knossos and Porcupine:
//!
//! - **P-compositionality**: linearizability is local, so the history is split per key and
//!   every key is checked on its own. The cost then grows with the concurrency on one key
//!   instead of with the whole history.
//! - **Search**: the invocations and completions of one key sit in a doubly linked list in time
//!   order. The search repeatedly picks an operation whose invocation comes before the first
//!   remaining completion, applies it to the model and, if the result matches, removes it from
//!   the list ("lifts" it) and starts over from the front; reaching a completion means the
//!   operation it belongs to was not placed in time, so the last choice is undone. The choices
//!   sit on an explicit stack, so deep histories cannot overflow the thread's stack.
//! - **Memoization**: the future of the search depends only on which operations are already
//!   linearized and on the register value, so every (bitset, value) pair is explored once.
//!   This turns the exponential search into one bounded by the concurrency window in practice.
//!
//! Operations whose outcome is unknown (a timeout, an indefinite error) may take effect at any
//! time after their invocation, or never. They are given a completion at +infinity and the
//! search succeeds as soon as every operation with a known outcome is linearized: an unknown
//! write left out is one that never happened. Operations that definitely failed are dropped,
//! and so are reads with an unknown outcome, which constrain nothing.
//!
//! Unknown operations are what makes this search explode under faults: each stays a candidate
//! forever, and a failing history makes the search try every combination of them. Three
//! reductions, each keeping at least one linearization whenever there is any, avoid that:
//! a write never directly follows an unknown operation (`Step::worth_trying`), unknown
//! operations with the same effect are used in invocation order (`Twins`), and a state is
//! skipped when an explored one differs only by having used fewer unknown operations (`Memo`).
//! The search is tested against a brute-force checker on random small histories.
//!
//! When a key cannot be linearized, the report names the smallest prefix of its history that
//! has no linearization: the first completion no partial linearization gets past, the operation it
//! belongs to, a partial linearization that got that far and the operations it left to choose
//! from.
//!
//! [`Operation`]: crate::linearizability::Operation
//! [`Recorder`]: crate::linearizability::Recorder

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// A register value. `None` in an `Option<Value>` is an absent key, which is also where every
/// key starts.
pub type Value = u64;

/// The search gives up on a key after exploring this many distinct states, so that a
/// pathological history (typically very many unknown writes on one key) ends with an
/// inconclusive verdict instead of exhausting memory: each state costs a bitset of the key's
/// operations.
pub const MAX_STATES_PER_KEY: usize = 5_000_000;

/// What a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write(Value),
    /// `expected: None` succeeds only while the key is absent, as the store's atomic checks do.
    Cas {
        expected: Option<Value>,
        new: Value,
    },
}

/// What the client learned about its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Read(Option<Value>),
    Written,
    CasOk,
    CasFailed,
    /// A timeout or an indefinite error: the operation may or may not have taken effect, at any
    /// time after its invocation. A client that retries a write on its own would hide exactly
    /// this case, so the SDK reports it instead and the checker must allow both.
    Unknown,
    /// Definitely not applied (for instance rejected before it was sent), so it is dropped from
    /// the history rather than allowed to take effect.
    Failed,
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Only used in reports: the checker needs intervals, not the client's identity.
    pub client: usize,
    pub key: String,
    pub op: Op,
    pub outcome: Outcome,
    /// Nanoseconds on one monotonic clock shared by all clients of the history; taken before
    /// the request is sent.
    pub invoked_ns: u64,
    /// Taken after the response arrived. `None` means the operation may take effect at any time
    /// after its invocation; so does an [`Outcome::Unknown`] outcome, whatever this says,
    /// since a client that gave up knows nothing about when the store acted.
    pub completed_ns: Option<u64>,
}

/// Records a history from concurrent clients (share it through an `Arc`).
///
/// Timestamps come from one `Instant` taken at creation, so intervals of different clients are
/// comparable. Both are taken while the client waits on the recorder, never while the request
/// is in flight: the interval can only be wider than the real one, which can hide an anomaly
/// but never invent one.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Operation>>,
}

/// An invoked operation awaiting its outcome. Not `Clone`, so an operation completes at most
/// once; one dropped without [`Recorder::complete`] (its client died) stays unknown.
#[must_use = "complete the operation with Recorder::complete, or it is recorded as unknown"]
#[derive(Debug)]
pub struct Ticket {
    index: usize,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Call just before sending the request.
    pub fn invoke(&self, client: usize, key: &str, op: Op) -> Ticket {
        let mut ops = self.lock();
        // Under the lock, so that the history comes out sorted by invocation.
        let invoked_ns = self.now_ns();
        ops.push(Operation {
            client,
            key: key.to_owned(),
            op,
            outcome: Outcome::Unknown,
            invoked_ns,
            completed_ns: None,
        });
        Ticket { index: ops.len() - 1 }
    }

    /// Call as soon as the response (or the error) is in hand.
    ///
    /// # Panics
    ///
    /// If `ticket` came from another recorder with more operations than this one.
    pub fn complete(&self, ticket: Ticket, outcome: Outcome) {
        let completed_ns = self.now_ns();
        let mut ops = self.lock();
        let op = ops
            .get_mut(ticket.index)
            .expect("ticket completed on the recorder that issued it");
        op.outcome = outcome;
        op.completed_ns = Some(completed_ns);
    }

    /// The operations in invocation order; those still in flight are unknown.
    pub fn history(&self) -> Vec<Operation> {
        self.lock().clone()
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A client thread that panicked mid-operation leaves a consistent vector behind (every
    /// update is a single assignment), so its poison must not lose the others' history.
    fn lock(&self) -> MutexGuard<'_, Vec<Operation>> {
        self.ops.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a successful check covered, so that a test can tell a real pass from an empty history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Keys with at least one operation that did not definitely fail.
    pub keys: usize,
    /// Operations checked: every operation except those that definitely failed.
    pub operations: usize,
    /// Of those, the ones with an unknown outcome: many of them mean the faults made the run
    /// prove little.
    pub indeterminate: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub key: String,
    /// Several lines, meant for the test log: the operations involved with their clients, times
    /// and results, enough to find them in the nodes' logs.
    pub explanation: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// The store broke linearizability on this key.
    NotLinearizable(Violation),
    /// The search hit [`MAX_STATES_PER_KEY`] (or the caller's bound) on this key: neither a
    /// pass nor a proof of a bug.
    Inconclusive { key: String, explored: usize },
    /// The history contradicts itself (for instance a read completed as `Written`): a bug in
    /// the test client, kept apart so that it is never mistaken for a bug in the store.
    Malformed(Violation),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {:?}: {}", self.key, self.explanation)
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::NotLinearizable(violation) => write!(f, "history is not linearizable on {violation}"),
            CheckError::Inconclusive { key, explored } => write!(
                f,
                "linearizability check inconclusive on key {key:?}: gave up after exploring {explored} states"
            ),
            CheckError::Malformed(violation) => write!(f, "malformed history on {violation}"),
        }
    }
}

impl std::error::Error for CheckError {}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Read => write!(f, "read"),
            Op::Write(value) => write!(f, "write {value}"),
            Op::Cas { expected, new } => write!(f, "cas {} -> {new}", show_value(*expected)),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Read(value) => write!(f, "{}", show_value(*value)),
            Outcome::Written | Outcome::CasOk => write!(f, "ok"),
            Outcome::CasFailed => write!(f, "failed"),
            Outcome::Unknown => write!(f, "unknown"),
            Outcome::Failed => write!(f, "definitely failed"),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client {} {}: {} => {}, invoked {}, ",
            self.client,
            self.key,
            self.op,
            self.outcome,
            show_time(self.invoked_ns)
        )?;
        match (self.completed_ns, self.outcome) {
            (Some(completed), Outcome::Unknown) => write!(f, "gave up {}", show_time(completed)),
            (Some(completed), _) => write!(f, "completed {}", show_time(completed)),
            (None, _) => write!(f, "never completed"),
        }
    }
}

fn show_value(value: Option<Value>) -> String {
    value.map_or_else(|| "absent".to_owned(), |value| value.to_string())
}

fn show_time(ns: u64) -> String {
    format!("{}.{:06}ms", ns / 1_000_000, ns % 1_000_000)
}

/// Checks `history` with the default bound of [`MAX_STATES_PER_KEY`].
pub fn check(history: &[Operation]) -> Result<CheckReport, CheckError> {
    check_bounded(history, MAX_STATES_PER_KEY)
}

/// [`check`] with a caller-chosen bound on the states explored per key. Keys are checked in
/// key order, so the key reported for a history with several bad keys is deterministic.
pub fn check_bounded(history: &[Operation], max_states_per_key: usize) -> Result<CheckReport, CheckError> {
    let mut keys: BTreeMap<&str, Vec<(&Operation, Step)>> = BTreeMap::new();
    let mut report = CheckReport {
        keys: 0,
        operations: 0,
        indeterminate: 0,
    };
    for (index, operation) in history.iter().enumerate() {
        let step = Step::of(operation).map_err(|problem| {
            CheckError::Malformed(Violation {
                key: operation.key.clone(),
                explanation: format!("operation #{index} ({operation}) {problem}: the test client recorded it wrongly"),
            })
        })?;
        if operation.outcome == Outcome::Failed {
            continue;
        }
        report.operations += 1;
        if operation.outcome == Outcome::Unknown {
            report.indeterminate += 1;
        }
        let ops = keys.entry(&operation.key).or_default();
        if let Some(step) = step {
            ops.push((operation, step));
        }
    }
    report.keys = keys.len();
    for (key, ops) in &keys {
        check_key(key, ops, max_states_per_key)?;
    }
    Ok(report)
}

/// An operation reduced to its effect on the model, with its outcome folded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Step {
    Read(Option<Value>),
    Write(Value),
    CasOk { expected: Option<Value>, new: Value },
    CasFailed { expected: Option<Value> },
    MaybeWrite(Value),
    MaybeCas { expected: Option<Value>, new: Value },
}

impl Step {
    /// `Ok(None)` for operations that constrain nothing; `Err` says why the record is
    /// inconsistent.
    fn of(operation: &Operation) -> Result<Option<Step>, String> {
        if let Some(completed) = operation.completed_ns
            && completed < operation.invoked_ns
        {
            return Err("completed before it was invoked".to_owned());
        }
        let step = match (operation.op, operation.outcome) {
            (_, Outcome::Failed) | (Op::Read, Outcome::Unknown) => None,
            (Op::Read, Outcome::Read(value)) => Some(Step::Read(value)),
            (Op::Write(value), Outcome::Written) => Some(Step::Write(value)),
            (Op::Write(value), Outcome::Unknown) => Some(Step::MaybeWrite(value)),
            (Op::Cas { expected, new }, Outcome::CasOk) => Some(Step::CasOk { expected, new }),
            (Op::Cas { expected, .. }, Outcome::CasFailed) => Some(Step::CasFailed { expected }),
            (Op::Cas { expected, new }, Outcome::Unknown) => Some(Step::MaybeCas { expected, new }),
            (op, outcome) => return Err(format!("is a {op} but its outcome is {outcome:?}")),
        };
        Ok(step)
    }

    /// Operations with a known outcome must appear in the linearization; the others may be
    /// left out, which is how "never took effect" is modelled.
    fn mandatory(self) -> bool {
        !matches!(self, Step::MaybeWrite(_) | Step::MaybeCas { .. })
    }

    /// Whether the search needs to try this step right after an optional step
    /// (`after_optional`) or after a mandatory one.
    ///
    /// A write makes whatever ran just before it irrelevant, so if optional steps come right
    /// before a write, dropping them yields a linearization that is just as valid and leaves
    /// them available for later. Searching only such linearizations loses nothing, and stops
    /// runs of timed-out writes from being tried in every order and combination.
    fn worth_trying(self, after_optional: bool) -> bool {
        !(after_optional && matches!(self, Step::Write(_) | Step::MaybeWrite(_)))
    }

    /// The register after this step, or `None` if the step's outcome is impossible from
    /// `state`.
    ///
    /// An optional step that would not change the register is refused too: leaving it pending
    /// keeps every option that linearizing it as a no-op would, and saves the search a state.
    fn apply(self, state: Option<Value>) -> Option<Option<Value>> {
        match self {
            Step::Read(value) => (state == value).then_some(state),
            Step::Write(value) => Some(Some(value)),
            Step::CasOk { expected, new } => (state == expected).then_some(Some(new)),
            Step::CasFailed { expected } => (state != expected).then_some(state),
            Step::MaybeWrite(value) => (state != Some(value)).then_some(Some(value)),
            Step::MaybeCas { expected, new } => (state == expected && state != Some(new)).then_some(Some(new)),
        }
    }
}

/// An invocation or a completion, ordered as the search's list needs them: by time, with
/// invocations before completions at the same instant (the clock cannot order such operations,
/// so neither may the checker), and completions at +infinity of mandatory operations before
/// those of optional ones, so that the search never stops at an optional operation's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    time: u64,
    is_return: bool,
    optional: bool,
    op: u32,
}

/// No node: the end of the event list.
const NIL: u32 = u32::MAX;

/// The deepest point any partial linearization reached, kept to explain a failure.
struct Frontier {
    /// The completion event no partial linearization got past.
    node: u32,
    /// The partial linearization that got there, in order.
    linearized: Vec<u32>,
    state: Option<Value>,
}

fn check_key(key: &str, ops: &[(&Operation, Step)], max_states: usize) -> Result<(), CheckError> {
    let n = ops.len();
    let mandatory: Vec<bool> = ops.iter().map(|(_, step)| step.mandatory()).collect();
    let mandatory_total = mandatory.iter().filter(|&&is_mandatory| is_mandatory).count();
    if mandatory_total == 0 {
        return Ok(());
    }
    let count = u32::try_from(2 * n + 1).expect("fewer than 2^31 operations on one key");

    // Node i of the list is events[i]; the head sentinel comes last.
    let mut events: Vec<Event> = Vec::with_capacity(2 * n);
    for (index, (operation, step)) in ops.iter().enumerate() {
        let optional = !step.mandatory();
        let op = index as u32;
        let completed = match operation.completed_ns {
            Some(completed) if !optional => completed,
            _ => u64::MAX,
        };
        events.push(Event {
            time: operation.invoked_ns,
            is_return: false,
            optional,
            op,
        });
        events.push(Event {
            time: completed,
            is_return: true,
            optional,
            op,
        });
    }
    events.sort_unstable();
    let head = count - 1;
    let mut call_node = vec![0u32; n];
    let mut return_node = vec![0u32; n];
    for (node, event) in events.iter().enumerate() {
        if event.is_return {
            return_node[event.op as usize] = node as u32;
        } else {
            call_node[event.op as usize] = node as u32;
        }
    }
    let mut next: Vec<u32> = (1..=count).map(|i| if i >= head { NIL } else { i }).collect();
    let mut prev: Vec<u32> = (0..count).map(|i| if i == 0 { head } else { i - 1 }).collect();
    next[head as usize] = if n == 0 { NIL } else { 0 };
    prev[head as usize] = NIL;

    // Removal keeps a node's own links, so undoing removals in reverse order (the stack
    // discipline of the search) restores the list exactly: dancing links.
    let unlink = |next: &mut [u32], prev: &mut [u32], node: u32| {
        let (p, nx) = (prev[node as usize], next[node as usize]);
        next[p as usize] = nx;
        if nx != NIL {
            prev[nx as usize] = p;
        }
    };
    let relink = |next: &mut [u32], prev: &mut [u32], node: u32| {
        let (p, nx) = (prev[node as usize], next[node as usize]);
        next[p as usize] = node;
        if nx != NIL {
            prev[nx as usize] = node;
        }
    };

    let mut twins = Twins::new(ops, &events);
    let mut linearized = Linearized::new(&mandatory, &events);
    let mut memo = Memo::new(linearized.optional.len());
    let mut state: Option<Value> = None;
    // Per placed operation: the register before it, and the memo entry of the state after it.
    let mut stack: Vec<(u32, Option<Value>, u32)> = Vec::new();
    let mut mandatory_done = 0usize;
    let mut frontier: Option<Frontier> = None;
    let has_optional = mandatory_total < n;
    let mut entry = next[head as usize];
    // Mandatory candidates are tried before optional ones, so that states using fewer
    // optional operations tend to be explored first and dominate the others in the memo.
    let mut optional_pass = false;
    let mut after_optional = false;

    loop {
        if mandatory_done == mandatory_total {
            return Ok(());
        }
        if entry != NIL && !events[entry as usize].is_return {
            let op = events[entry as usize].op;
            let is_mandatory = mandatory[op as usize];
            if is_mandatory == optional_pass {
                entry = next[entry as usize];
                continue;
            }
            let step = ops[op as usize].1;
            if step.worth_trying(after_optional)
                && twins.is_next(op)
                && let Some(new_state) = step.apply(state)
            {
                linearized.toggle(op);
                if let Some(explored) = memo.insert(&linearized, new_state, !is_mandatory) {
                    if memo.len() > max_states {
                        return Err(CheckError::Inconclusive {
                            key: key.to_owned(),
                            explored: memo.len(),
                        });
                    }
                    stack.push((op, state, explored));
                    state = new_state;
                    after_optional = !is_mandatory;
                    if is_mandatory {
                        mandatory_done += 1;
                    }
                    twins.take(op);
                    unlink(&mut next, &mut prev, call_node[op as usize]);
                    unlink(&mut next, &mut prev, return_node[op as usize]);
                    entry = next[head as usize];
                    optional_pass = false;
                    continue;
                }
                linearized.toggle(op);
            }
            entry = next[entry as usize];
            continue;
        }

        if has_optional && !optional_pass {
            optional_pass = true;
            entry = next[head as usize];
            continue;
        }
        // A completion (or, defensively, the end of the list): its operation was not placed
        // before it, so this partial linearization is a dead end.
        if entry != NIL && frontier.as_ref().is_none_or(|best| entry > best.node) {
            frontier = Some(Frontier {
                node: entry,
                linearized: stack.iter().map(|&(op, _, _)| op).collect(),
                state,
            });
        }
        let Some((op, prior, explored)) = stack.pop() else {
            let frontier = frontier.expect("a history with required operations has a completion to stop at");
            return Err(CheckError::NotLinearizable(Violation {
                key: key.to_owned(),
                explanation: explain(ops, &events, &frontier),
            }));
        };
        memo.finish(explored);
        state = prior;
        after_optional = stack.last().is_some_and(|&(last, _, _)| !mandatory[last as usize]);
        linearized.toggle(op);
        if mandatory[op as usize] {
            mandatory_done -= 1;
        }
        twins.put_back(op);
        relink(&mut next, &mut prev, return_node[op as usize]);
        relink(&mut next, &mut prev, call_node[op as usize]);
        entry = next[call_node[op as usize] as usize];
        optional_pass = !mandatory[op as usize];
    }
}

/// Optional operations with the same step, grouped so that the search uses them in invocation
/// order only.
///
/// Once invoked, two such operations are interchangeable for the rest of the search (their
/// completions are both at +infinity), so trying the later one while the earlier is unused
/// only revisits the same linearizations under another name. Histories with many timed-out
/// writes of the same value would otherwise multiply their states by every choice.
struct Twins {
    /// Per operation: its group and its rank in the group, or `None` for mandatory ones.
    member: Vec<Option<(u32, u32)>>,
    /// Per group: how many of its members the current partial linearization uses.
    used: Vec<u32>,
}

impl Twins {
    fn new(ops: &[(&Operation, Step)], events: &[Event]) -> Self {
        let mut groups: HashMap<Step, (u32, u32)> = HashMap::new();
        let mut member = vec![None; ops.len()];
        for &Event { is_return, op, .. } in events {
            let step = ops[op as usize].1;
            if is_return || step.mandatory() {
                continue;
            }
            let next_group = groups.len() as u32;
            let (group, size) = groups.entry(step).or_insert((next_group, 0));
            member[op as usize] = Some((*group, *size));
            *size += 1;
        }
        Self {
            member,
            used: vec![0; groups.len()],
        }
    }

    fn is_next(&self, op: u32) -> bool {
        self.member[op as usize].is_none_or(|(group, rank)| self.used[group as usize] == rank)
    }

    fn take(&mut self, op: u32) {
        if let Some((group, _)) = self.member[op as usize] {
            self.used[group as usize] += 1;
        }
    }

    fn put_back(&mut self, op: u32) {
        if let Some((group, _)) = self.member[op as usize] {
            self.used[group as usize] -= 1;
        }
    }
}

/// How many operations each list of a report shows before summarizing the rest.
const REPORT_LINES: usize = 16;

fn explain(ops: &[(&Operation, Step)], events: &[Event], frontier: &Frontier) -> String {
    use std::fmt::Write as _;

    let Event { time, op: stuck, .. } = events[frontier.node as usize];
    let mut text = String::new();
    let _ = writeln!(
        text,
        "the history up to {} has no linearization (every shorter prefix has one); that is when \
         this operation completed, and no order of the operations before it explains its result:",
        show_time(time)
    );
    let _ = writeln!(text, "    {}", ops[stuck as usize].0);

    let linearized = &frontier.linearized;
    let _ = writeln!(
        text,
        "a partial linearization that gets that far places {} operations and leaves the register at {}; its last ones, in order:",
        linearized.len(),
        show_value(frontier.state)
    );
    let skipped = linearized.len().saturating_sub(REPORT_LINES);
    if skipped > 0 {
        let _ = writeln!(text, "    ... {skipped} earlier operations");
    }
    for &op in &linearized[skipped..] {
        let _ = writeln!(text, "    {}", ops[op as usize].0);
    }

    let mut placed = vec![false; ops.len()];
    for &op in linearized {
        placed[op as usize] = true;
    }
    let candidates: Vec<u32> = events[..frontier.node as usize]
        .iter()
        .filter(|event| !event.is_return && !placed[event.op as usize])
        .map(|event| event.op)
        .collect();
    let _ = writeln!(
        text,
        "operations invoked by then and not placed in it ({}):",
        candidates.len()
    );
    for &op in candidates.iter().take(REPORT_LINES) {
        let _ = writeln!(text, "    {}", ops[op as usize].0);
    }
    if candidates.len() > REPORT_LINES {
        let _ = writeln!(text, "    ... and {} more", candidates.len() - REPORT_LINES);
    }
    text
}

/// The set of linearized operations, as two bitsets: operations with a known outcome are
/// placed roughly in time order, so their bitset trims well in the memo, while unknown ones
/// may stay unplaced forever and would pin a zero bit near the start of a single bitset.
struct Linearized {
    /// Per operation: whether it is mandatory, and its bit in the bitset of its class.
    slots: Vec<(bool, u32)>,
    mandatory: Vec<u64>,
    optional: Vec<u64>,
    /// Zobrist hash of the mandatory bitset, maintained on every toggle so a lookup never
    /// hashes the bitset itself. The optional bitset stays out of it, so that all optional
    /// variants of a state meet in one memo chain, where the memo looks for a dominating one.
    hash: u64,
}

impl Linearized {
    /// Bits are assigned in invocation order, the order the search roughly places operations in.
    fn new(mandatory: &[bool], events: &[Event]) -> Self {
        let (mut mandatory_count, mut optional_count) = (0u32, 0u32);
        let mut slots = vec![(false, 0); mandatory.len()];
        for event in events.iter().filter(|event| !event.is_return) {
            let is_mandatory = mandatory[event.op as usize];
            let counter = if is_mandatory {
                &mut mandatory_count
            } else {
                &mut optional_count
            };
            slots[event.op as usize] = (is_mandatory, *counter);
            *counter += 1;
        }
        Self {
            slots,
            mandatory: vec![0; (mandatory_count as usize).div_ceil(64)],
            optional: vec![0; (optional_count as usize).div_ceil(64)],
            hash: 0,
        }
    }

    fn toggle(&mut self, op: u32) {
        let (is_mandatory, slot) = self.slots[op as usize];
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        if is_mandatory {
            self.mandatory[word] ^= bit;
            self.hash ^= splitmix64(u64::from(slot));
        } else {
            self.optional[word] ^= bit;
        }
    }
}

/// Visited states: a linearized set, the register value it leaves and whether its last step
/// was optional.
///
/// A state is skipped when one already explored to the end (and so failed) has the same value,
/// the same mandatory operations and a subset of its optional ones. Such a state dominates:
/// the optional operations it has not used can still be used or left out, their completions
/// at +infinity constrain nothing, and twins used further down their group can be renamed to
/// unused earlier ones, so whatever the new state could reach, the old one could too. Without
/// this, every combination of the timed-out writes that could explain some read is a state
/// of its own. States still being explored do not count, since they have not failed yet: they
/// are the new state's ancestors, from which it was reached through optional steps alone.
///
/// Mandatory bitsets are stored trimmed of their leading all-ones and trailing all-zeros
/// words: the search places them roughly in time order, so what differs between states is a
/// narrow window, and a full copy per state would cost memory proportional to the whole key's
/// history.
struct Memo {
    /// Hash of (mandatory set, value, last step optional) -> most recent entry with it;
    /// entries chain to older ones, so all optional variants of a state share a chain.
    heads: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    entries: Vec<MemoEntry>,
    /// Each entry's trimmed mandatory words followed by its optional words.
    words: Vec<u64>,
    optional_words: usize,
}

struct MemoEntry {
    next: u32,
    state: Option<Value>,
    /// Whether the last step was optional, which restricts the next one (see
    /// [`Step::worth_trying`]), so it is part of the state.
    after_optional: bool,
    /// Explored to the end without success.
    finished: bool,
    /// Number of leading all-ones mandatory words left out.
    skipped: u32,
    start: usize,
    len: u32,
}

impl Memo {
    fn new(optional_words: usize) -> Self {
        Self {
            heads: HashMap::default(),
            entries: Vec::new(),
            words: Vec::new(),
            optional_words,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Records the state unless it is known or dominated, returning its entry to
    /// [`Memo::finish`] once explored; `None` if the search can skip it.
    fn insert(&mut self, linearized: &Linearized, state: Option<Value>, after_optional: bool) -> Option<u32> {
        let bits = &linearized.mandatory;
        let mut skipped = 0;
        while skipped < bits.len() && bits[skipped] == u64::MAX {
            skipped += 1;
        }
        let mut end = bits.len();
        while end > skipped && bits[end - 1] == 0 {
            end -= 1;
        }
        let core = &bits[skipped..end];
        let key = linearized.hash
            ^ state.map_or(0x9e37_79b9_7f4a_7c15, splitmix64)
            ^ if after_optional { 0x6a09_e667_f3bc_c908 } else { 0 };
        let slot = self.heads.entry(key).or_insert(NIL);
        let mut index = *slot;
        while index != NIL {
            let entry = &self.entries[index as usize];
            let core_end = entry.start + entry.len as usize;
            if entry.finished
                && entry.state == state
                && entry.after_optional == after_optional
                && entry.skipped as usize == skipped
                && self.words[entry.start..core_end] == *core
                && self.words[core_end..core_end + self.optional_words]
                    .iter()
                    .zip(&linearized.optional)
                    .all(|(old, new)| old & !new == 0)
            {
                return None;
            }
            index = entry.next;
        }
        // Out of indices: the state bound stops the search long before this.
        let new_index = u32::try_from(self.entries.len()).ok().filter(|&index| index != NIL)?;
        self.entries.push(MemoEntry {
            next: *slot,
            state,
            after_optional,
            finished: false,
            skipped: skipped as u32,
            start: self.words.len(),
            len: core.len() as u32,
        });
        self.words.extend_from_slice(core);
        self.words.extend_from_slice(&linearized.optional);
        *slot = new_index;
        Some(new_index)
    }

    fn finish(&mut self, index: u32) {
        self.entries[index as usize].finished = true;
    }
}

/// The memo's keys are already uniformly distributed hashes; hashing them again is wasted work.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    fn operation(
        client: usize,
        key: &str,
        op: Op,
        outcome: Outcome,
        invoked: u64,
        completed: Option<u64>,
    ) -> Operation {
        Operation {
            client,
            key: key.to_owned(),
            op,
            outcome,
            invoked_ns: invoked,
            completed_ns: completed,
        }
    }

    fn write(client: usize, value: Value, invoked: u64, completed: u64) -> Operation {
        operation(
            client,
            "k",
            Op::Write(value),
            Outcome::Written,
            invoked,
            Some(completed),
        )
    }

    fn read(client: usize, value: Option<Value>, invoked: u64, completed: u64) -> Operation {
        operation(client, "k", Op::Read, Outcome::Read(value), invoked, Some(completed))
    }

    fn cas(client: usize, expected: Option<Value>, new: Value, ok: bool, invoked: u64, completed: u64) -> Operation {
        let outcome = if ok { Outcome::CasOk } else { Outcome::CasFailed };
        operation(
            client,
            "k",
            Op::Cas { expected, new },
            outcome,
            invoked,
            Some(completed),
        )
    }

    fn unknown_write(client: usize, value: Value, invoked: u64) -> Operation {
        operation(client, "k", Op::Write(value), Outcome::Unknown, invoked, None)
    }

    fn on_key(key: &str, mut op: Operation) -> Operation {
        op.key = key.to_owned();
        op
    }

    #[track_caller]
    fn assert_linearizable(history: &[Operation]) -> CheckReport {
        match check(history) {
            Ok(report) => report,
            Err(error) => panic!("expected a linearizable history, got: {error}"),
        }
    }

    #[track_caller]
    fn assert_not_linearizable(history: &[Operation]) -> Violation {
        match check(history) {
            Err(CheckError::NotLinearizable(violation)) => violation,
            other => panic!("expected a linearizability violation, got {other:?}"),
        }
    }

    #[test]
    fn sequential_history_of_every_kind_is_accepted() {
        let history = [
            read(0, None, 0, 1),
            write(0, 1, 2, 3),
            read(1, Some(1), 4, 5),
            cas(0, Some(1), 2, true, 6, 7),
            cas(1, Some(1), 3, false, 8, 9),
            cas(1, None, 3, false, 10, 11),
            read(0, Some(2), 12, 13),
            write(1, 4, 14, 15),
            read(0, Some(4), 16, 17),
        ];
        let report = assert_linearizable(&history);
        assert_eq!(
            report,
            CheckReport {
                keys: 1,
                operations: 9,
                indeterminate: 0
            }
        );
    }

    #[test]
    fn sequential_history_with_a_wrong_read_is_rejected() {
        let history = [
            write(0, 1, 0, 1),
            write(0, 2, 2, 3),
            read(0, Some(1), 4, 5),
            write(0, 3, 6, 7),
        ];
        let violation = assert_not_linearizable(&history);
        assert_eq!(violation.key, "k");
        assert!(violation.explanation.contains("read => 1"), "{}", violation.explanation);
    }

    #[test]
    fn cas_on_absent_key_succeeds_only_while_absent() {
        assert_linearizable(&[
            cas(0, None, 1, true, 0, 1),
            cas(0, None, 2, false, 2, 3),
            read(0, Some(1), 4, 5),
        ]);
        assert_not_linearizable(&[cas(0, None, 1, true, 0, 1), cas(0, None, 2, true, 2, 3)]);
    }

    #[test]
    fn read_concurrent_with_a_write_may_see_either_value() {
        let before = [
            write(0, 1, 0, 10),
            write(1, 2, 20, 40),
            read(2, Some(1), 25, 35),
            read(2, Some(2), 50, 60),
        ];
        let after = [
            write(0, 1, 0, 10),
            write(1, 2, 20, 40),
            read(2, Some(2), 25, 35),
            read(2, Some(2), 50, 60),
        ];
        assert_linearizable(&before);
        assert_linearizable(&after);
        // Two overlapping reads may even disagree in either order while the write is in flight,
        // as long as they do not go back in time.
        assert_linearizable(&[write(1, 2, 0, 100), read(2, None, 10, 20), read(3, Some(2), 15, 30)]);
        assert_not_linearizable(&[write(1, 2, 0, 100), read(2, Some(2), 10, 20), read(3, None, 30, 40)]);
    }

    #[test]
    fn operations_touching_at_one_instant_count_as_concurrent() {
        assert_linearizable(&[write(0, 1, 0, 10), read(1, None, 10, 20)]);
        assert_not_linearizable(&[write(0, 1, 0, 10), read(1, None, 11, 20)]);
    }

    #[test]
    fn stale_read_after_a_completed_write_is_rejected() {
        let history = [write(0, 1, 0, 10), write(1, 2, 20, 30), read(2, Some(1), 40, 50)];
        let violation = assert_not_linearizable(&history);
        assert!(
            violation.explanation.contains("client 2 k: read => 1"),
            "{}",
            violation.explanation
        );
    }

    #[test]
    fn lost_acknowledged_write_is_rejected() {
        let history = [
            write(0, 1, 0, 10),
            write(1, 2, 20, 30),
            read(2, Some(1), 40, 50),
            read(0, Some(1), 60, 70),
            read(1, Some(1), 80, 90),
        ];
        assert_not_linearizable(&history);
        // Reads that never see an acknowledged first write, with nothing overwriting it.
        assert_not_linearizable(&[write(0, 7, 0, 10), read(1, None, 20, 30), read(2, None, 40, 50)]);
    }

    #[test]
    fn two_successful_cas_from_the_same_value_are_rejected() {
        let history = [
            write(0, 1, 0, 10),
            cas(1, Some(1), 2, true, 20, 50),
            cas(2, Some(1), 3, true, 25, 45),
        ];
        let violation = assert_not_linearizable(&history);
        assert!(violation.explanation.contains("cas 1 -> "), "{}", violation.explanation);
        // The same pair with one failure is fine, in either order.
        assert_linearizable(&[
            write(0, 1, 0, 10),
            cas(1, Some(1), 2, true, 20, 50),
            cas(2, Some(1), 3, false, 25, 45),
        ]);
        assert_linearizable(&[
            write(0, 1, 0, 10),
            cas(1, Some(1), 2, false, 20, 50),
            cas(2, Some(1), 3, true, 25, 45),
        ]);
    }

    #[test]
    fn read_of_the_old_value_after_a_successful_cas_is_rejected() {
        assert_not_linearizable(&[
            write(0, 1, 0, 10),
            cas(1, Some(1), 2, true, 20, 30),
            read(2, Some(1), 40, 50),
        ]);
        assert_linearizable(&[
            write(0, 1, 0, 10),
            cas(1, Some(1), 2, true, 20, 30),
            read(2, Some(2), 40, 50),
        ]);
    }

    #[test]
    fn failed_cas_must_have_seen_another_value() {
        assert_not_linearizable(&[write(0, 1, 0, 10), cas(1, Some(1), 2, false, 20, 30)]);
    }

    #[test]
    fn unknown_write_observed_later_is_accepted() {
        let history = [
            write(0, 1, 0, 10),
            unknown_write(1, 2, 20),
            read(2, Some(1), 30, 40),
            read(2, Some(2), 1_000, 1_010),
            read(0, Some(2), 2_000, 2_010),
        ];
        let report = assert_linearizable(&history);
        assert_eq!(report.indeterminate, 1);
    }

    #[test]
    fn unknown_write_never_observed_is_accepted() {
        let history = [
            write(0, 1, 0, 10),
            unknown_write(1, 2, 20),
            read(2, Some(1), 30, 40),
            read(2, Some(1), 1_000, 1_010),
        ];
        assert_linearizable(&history);
        // Even when the client recorded when it gave up.
        let mut timed_out = history.clone();
        timed_out[1].completed_ns = Some(25);
        assert_linearizable(&timed_out);
    }

    #[test]
    fn unknown_write_cannot_take_effect_before_its_invocation_or_twice() {
        assert_not_linearizable(&[read(0, Some(2), 0, 10), unknown_write(1, 2, 20)]);
        // Once seen and overwritten, it cannot reappear.
        assert_not_linearizable(&[
            unknown_write(1, 2, 0),
            read(0, Some(2), 10, 20),
            write(0, 3, 30, 40),
            read(0, Some(2), 50, 60),
        ]);
    }

    #[test]
    fn unknown_cas_applies_only_from_its_expected_value() {
        let unknown_cas = operation(
            1,
            "k",
            Op::Cas {
                expected: Some(1),
                new: 2,
            },
            Outcome::Unknown,
            20,
            None,
        );
        assert_linearizable(&[write(0, 1, 0, 10), unknown_cas.clone(), read(2, Some(2), 30, 40)]);
        assert_linearizable(&[write(0, 1, 0, 10), unknown_cas.clone(), read(2, Some(1), 30, 40)]);
        assert_not_linearizable(&[write(0, 3, 0, 10), unknown_cas, read(2, Some(2), 30, 40)]);
    }

    #[test]
    fn known_result_without_completion_time_may_linearize_late_but_must_linearize() {
        let pending_read = operation(1, "k", Op::Read, Outcome::Read(Some(5)), 0, None);
        assert_linearizable(&[pending_read.clone(), write(0, 5, 100, 110)]);
        assert_not_linearizable(&[pending_read.clone(), write(0, 6, 100, 110)]);
        let pending_cas = operation(1, "k", Op::Cas { expected: None, new: 1 }, Outcome::CasOk, 0, None);
        let mut late_cas = pending_cas.clone();
        late_cas.invoked_ns = 20;
        assert_not_linearizable(&[write(0, 6, 0, 10), late_cas]);
        assert_linearizable(&[pending_cas, read(0, None, 5, 6), read(0, Some(1), 20, 30)]);
    }

    #[test]
    fn read_of_a_value_never_written_is_rejected() {
        let violation = assert_not_linearizable(&[write(0, 1, 0, 10), read(1, Some(9), 5, 15), write(0, 2, 20, 30)]);
        assert!(violation.explanation.contains("read => 9"), "{}", violation.explanation);
        assert_not_linearizable(&[read(0, Some(9), 0, 10)]);
    }

    #[test]
    fn failed_operations_and_unknown_reads_are_dropped() {
        let history = [
            operation(0, "k", Op::Write(5), Outcome::Failed, 0, Some(10)),
            operation(1, "k", Op::Read, Outcome::Unknown, 0, None),
            read(2, None, 20, 30),
        ];
        let report = assert_linearizable(&history);
        assert_eq!(
            report,
            CheckReport {
                keys: 1,
                operations: 2,
                indeterminate: 1
            }
        );
        // Had the failed write counted, this read would be stale.
        let mut written = history.clone();
        written[0].outcome = Outcome::Written;
        assert_not_linearizable(&written);
    }

    #[test]
    fn bad_key_among_good_ones_is_reported_with_its_key() {
        let mut history = Vec::new();
        for key in ["a", "b", "d"] {
            history.push(on_key(key, write(0, 1, 0, 10)));
            history.push(on_key(key, read(1, Some(1), 20, 30)));
        }
        // The same operations would be fine on one key; spread over two, "c" reads a value
        // written only to "b".
        history.push(on_key("c", read(1, Some(1), 20, 30)));
        let violation = assert_not_linearizable(&history);
        assert_eq!(violation.key, "c");
        assert!(
            violation.explanation.contains("client 1 c: read => 1"),
            "{}",
            violation.explanation
        );
        let report = assert_linearizable(&history[..6]);
        assert_eq!(report.keys, 3);
    }

    #[test]
    fn outcome_contradicting_its_operation_is_reported_as_malformed() {
        let cases = [
            operation(0, "k", Op::Read, Outcome::Written, 0, Some(1)),
            operation(0, "k", Op::Write(1), Outcome::Read(Some(1)), 0, Some(1)),
            operation(0, "k", Op::Write(1), Outcome::CasOk, 0, Some(1)),
            operation(0, "k", Op::Cas { expected: None, new: 1 }, Outcome::Written, 0, Some(1)),
            operation(0, "k", Op::Read, Outcome::Read(None), 10, Some(5)),
        ];
        for bad in cases {
            match check(&[write(1, 1, 0, 1), bad.clone()]) {
                Err(CheckError::Malformed(violation)) => {
                    assert_eq!(violation.key, "k");
                    assert!(
                        violation.explanation.contains("operation #1"),
                        "{}",
                        violation.explanation
                    );
                }
                other => panic!("{bad:?} should be malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn search_beyond_the_state_bound_is_inconclusive() {
        // Acknowledged writes all concurrent with an impossible read that completes first:
        // every subset of them, with each of its values last, is a state to rule out.
        let mut history: Vec<Operation> = (0..12).map(|i| write(i, i as Value + 1, 0, 1_000)).collect();
        history.push(read(99, Some(100), 10, 20));
        match check_bounded(&history, 1_000) {
            Err(CheckError::Inconclusive { key, explored }) => {
                assert_eq!(key, "k");
                assert!(explored > 1_000);
            }
            other => panic!("expected an inconclusive check, got {other:?}"),
        }
        // With the default bound the same search finishes and finds the impossible read.
        assert_not_linearizable(&history);
    }

    #[test]
    fn many_timed_out_writes_do_not_blow_up_a_failing_search() {
        let mut history: Vec<Operation> = (0..60)
            .map(|i| unknown_write(i, i as Value % 7 + 1, i as u64))
            .collect();
        history.push(read(99, Some(100), 100, 110));
        assert_not_linearizable(&history);
        history.pop();
        for (i, value) in [3, 5, 1, 3, 7, 3].into_iter().enumerate() {
            let at = 100 + 10 * i as u64;
            history.push(read(99, Some(value), at, at + 5));
        }
        assert_linearizable(&history);
    }

    #[test]
    fn unknown_steps_may_chain_between_known_ones() {
        let maybe_cas = |client, expected, new| {
            operation(
                client,
                "k",
                Op::Cas {
                    expected: Some(expected),
                    new,
                },
                Outcome::Unknown,
                20,
                None,
            )
        };
        // Two timed-out CAS one after the other.
        assert_linearizable(&[
            write(0, 1, 0, 10),
            maybe_cas(1, 1, 2),
            maybe_cas(2, 2, 3),
            read(3, Some(3), 30, 40),
        ]);
        assert_linearizable(&[
            write(0, 1, 0, 10),
            maybe_cas(2, 2, 3),
            maybe_cas(1, 1, 2),
            read(3, Some(3), 30, 40),
        ]);
        // A timed-out write that enables a timed-out CAS.
        assert_linearizable(&[
            write(0, 1, 0, 10),
            unknown_write(1, 5, 20),
            maybe_cas(2, 5, 6),
            read(3, Some(6), 30, 40),
        ]);
        // A timed-out write that enables an acknowledged CAS, then a failed one.
        assert_linearizable(&[
            write(0, 1, 0, 10),
            unknown_write(1, 5, 20),
            cas(2, Some(5), 7, true, 30, 40),
            cas(2, Some(5), 8, false, 50, 60),
            read(3, Some(7), 70, 80),
        ]);
        // A timed-out write that makes an acknowledged CAS fail.
        assert_linearizable(&[
            write(0, 1, 0, 10),
            unknown_write(1, 5, 20),
            cas(2, Some(1), 7, false, 30, 40),
        ]);
        assert_not_linearizable(&[write(0, 1, 0, 10), cas(2, Some(1), 7, false, 30, 40)]);
    }

    #[test]
    fn timed_out_writes_of_one_value_each_take_effect_at_most_once() {
        let mut history = vec![
            unknown_write(0, 2, 0),
            unknown_write(1, 2, 5),
            read(2, Some(2), 10, 20),
            write(2, 3, 30, 40),
            read(2, Some(2), 50, 60),
        ];
        assert_linearizable(&history);
        history.extend([write(2, 4, 70, 80), read(2, Some(2), 90, 100)]);
        assert_not_linearizable(&history);
        // A third one invoked only after the second read can explain the last.
        history.push(unknown_write(3, 2, 65));
        assert_linearizable(&history);
    }

    #[test]
    fn empty_history_passes_with_an_empty_report() {
        assert_eq!(
            assert_linearizable(&[]),
            CheckReport {
                keys: 0,
                operations: 0,
                indeterminate: 0
            }
        );
    }

    #[test]
    fn recorder_captures_concurrent_clients_of_a_linearizable_store() {
        let recorder = Arc::new(Recorder::new());
        let store = Arc::new(Mutex::new(HashMap::<String, Value>::new()));
        let threads: Vec<_> = (0..4)
            .map(|client| {
                let recorder = Arc::clone(&recorder);
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let mut rng = XorShift::new(client as u64);
                    for _ in 0..200 {
                        let key = format!("k{}", rng.below(2));
                        let op = match rng.below(3) {
                            0 => Op::Read,
                            1 => Op::Write(rng.below(4)),
                            _ => Op::Cas {
                                expected: rng.below(5).checked_sub(1),
                                new: rng.below(4),
                            },
                        };
                        let ticket = recorder.invoke(client, &key, op);
                        let outcome = {
                            let mut store = store.lock().unwrap();
                            match op {
                                Op::Read => Outcome::Read(store.get(&key).copied()),
                                Op::Write(value) => {
                                    store.insert(key.clone(), value);
                                    Outcome::Written
                                }
                                Op::Cas { expected, new } if store.get(&key).copied() == expected => {
                                    store.insert(key.clone(), new);
                                    Outcome::CasOk
                                }
                                Op::Cas { .. } => Outcome::CasFailed,
                            }
                        };
                        recorder.complete(ticket, outcome);
                    }
                    // Left in flight: recorded as unknown.
                    let _abandoned = recorder.invoke(client, "k0", Op::Write(99));
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let history = recorder.history();
        assert_eq!(history.len(), 4 * 201);
        assert!(history.windows(2).all(|pair| pair[0].invoked_ns <= pair[1].invoked_ns));
        let report = assert_linearizable(&history);
        assert_eq!(report.indeterminate, 4);
        assert_eq!(report.operations, 4 * 201);

        // The same history with one read result changed to a value no one wrote must fail.
        let mut corrupted = history;
        let target = corrupted
            .iter()
            .position(|op| matches!(op.outcome, Outcome::Read(_)))
            .expect("some read among 800 random operations");
        corrupted[target].outcome = Outcome::Read(Some(1_000));
        assert_eq!(assert_not_linearizable(&corrupted).key, corrupted[target].key);
    }

    /// xorshift64*: deterministic, so a failing seed can be replayed.
    struct XorShift(u64);

    impl XorShift {
        fn new(seed: u64) -> Self {
            Self(splitmix64(seed) | 1)
        }

        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }

        fn chance(&mut self, per_mille: u64) -> bool {
            self.below(1_000) < per_mille
        }
    }

    struct Simulation {
        clients: usize,
        keys: u64,
        operations: usize,
        /// Values written are `1..=values`: few enough that CAS often succeeds and reads are
        /// ambiguous, which is what makes the search work.
        values: Value,
        unknown_per_mille: u64,
        failed_per_mille: u64,
    }

    /// A history of a linearizable register: every operation gets a random interval (each
    /// client's operations in sequence) and a linearization point inside it, and the results
    /// come from applying the operations in the order of those points. Unknown operations
    /// take effect at a point after their invocation, possibly long after, or not at all.
    fn simulate(rng: &mut XorShift, sim: &Simulation) -> Vec<Operation> {
        let mut free_at = vec![0u64; sim.clients];
        let mut history = Vec::with_capacity(sim.operations);
        // (linearization point, operation, whether its client learns the result)
        let mut points: Vec<(u64, usize, bool)> = Vec::new();
        for index in 0..sim.operations {
            // The client that is free first goes next, so about `clients` operations overlap.
            let client = (0..sim.clients)
                .min_by_key(|&c| (free_at[c], c))
                .expect("at least one client");
            let invoked = free_at[client] + 1 + rng.below(20);
            let duration = 1 + rng.below(100);
            let completed = invoked + duration;
            free_at[client] = completed;
            let op = match rng.below(3) {
                0 => Op::Read,
                1 => Op::Write(1 + rng.below(sim.values)),
                _ => Op::Cas {
                    expected: rng.below(sim.values + 1).checked_sub(1).map(|v| v + 1),
                    new: 1 + rng.below(sim.values),
                },
            };
            let mut outcome = Outcome::Unknown;
            let mut completed_ns = Some(completed);
            if rng.chance(sim.failed_per_mille) {
                outcome = Outcome::Failed;
            } else if rng.chance(sim.unknown_per_mille) {
                if rng.chance(500) {
                    completed_ns = None;
                }
                if rng.chance(500) {
                    points.push((invoked + rng.below(duration * 20), index, false));
                }
            } else {
                points.push((invoked + rng.below(duration + 1), index, true));
            }
            history.push(Operation {
                client,
                key: format!("k{}", rng.below(sim.keys)),
                op,
                outcome,
                invoked_ns: invoked,
                completed_ns,
            });
        }
        points.sort_unstable();
        let mut registers: HashMap<String, Value> = HashMap::new();
        for (_, index, learned) in points {
            let operation = &mut history[index];
            let current = registers.get(&operation.key).copied();
            let result = match operation.op {
                Op::Read => Outcome::Read(current),
                Op::Write(value) => {
                    registers.insert(operation.key.clone(), value);
                    Outcome::Written
                }
                Op::Cas { expected, new } if current == expected => {
                    registers.insert(operation.key.clone(), new);
                    Outcome::CasOk
                }
                Op::Cas { .. } => Outcome::CasFailed,
            };
            if learned {
                operation.outcome = result;
            }
        }
        history
    }

    /// Seeds of the randomized tests: a failure names its seed, which replays it exactly.
    const SEEDS: u64 = 300;

    fn random_simulation(rng: &mut XorShift) -> Simulation {
        Simulation {
            clients: 2 + rng.below(8) as usize,
            keys: 1 + rng.below(3),
            operations: 50 + rng.below(250) as usize,
            values: 1 + rng.below(5),
            unknown_per_mille: [0, 10, 50][rng.below(3) as usize],
            failed_per_mille: [0, 20][rng.below(2) as usize],
        }
    }

    #[test]
    fn random_linearizable_histories_are_accepted() {
        let started = Instant::now();
        let mut operations = 0;
        for seed in 0..SEEDS {
            let mut rng = XorShift::new(seed);
            let sim = random_simulation(&mut rng);
            let history = simulate(&mut rng, &sim);
            match check(&history) {
                Ok(report) => operations += report.operations,
                Err(error) => panic!("seed {seed}: a simulated linearizable history was rejected: {error}"),
            }
        }
        eprintln!(
            "{SEEDS} linearizable histories ({operations} operations) accepted in {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn random_history_with_a_read_of_an_unwritten_value_is_rejected() {
        let started = Instant::now();
        for seed in 0..SEEDS {
            let mut rng = XorShift::new(seed);
            let sim = random_simulation(&mut rng);
            let mut history = simulate(&mut rng, &sim);
            let reads: Vec<usize> = (0..history.len())
                .filter(|&i| matches!(history[i].outcome, Outcome::Read(_)))
                .collect();
            assert!(!reads.is_empty(), "seed {seed}: no read to corrupt");
            let target = reads[rng.below(reads.len() as u64) as usize];
            history[target].outcome = Outcome::Read(Some(sim.values + 1 + rng.below(1_000)));
            match check(&history) {
                Err(CheckError::NotLinearizable(violation)) => assert_eq!(violation.key, history[target].key),
                other => panic!("seed {seed}: the corrupted read #{target} was not caught: {other:?}"),
            }
        }
        eprintln!("{SEEDS} corrupted histories rejected in {:?}", started.elapsed());
    }

    /// Linearizability straight from its definition, by trying every order of every subset
    /// that contains the operations with a known outcome: exponential, and independent of the
    /// search's pruning rules, which it is here to check.
    fn brute_force(history: &[Operation]) -> bool {
        fn deadline(op: &Operation) -> Option<u64> {
            if op.outcome == Outcome::Unknown {
                None
            } else {
                op.completed_ns
            }
        }
        fn search(ops: &[&Operation], placed: &mut [bool], state: Option<Value>) -> bool {
            if (0..ops.len()).all(|i| placed[i] || ops[i].outcome == Outcome::Unknown) {
                return true;
            }
            for i in 0..ops.len() {
                let must_wait = (0..ops.len())
                    .any(|j| j != i && !placed[j] && deadline(ops[j]).is_some_and(|done| done < ops[i].invoked_ns));
                if placed[i] || must_wait {
                    continue;
                }
                let after = match (ops[i].op, ops[i].outcome) {
                    (Op::Read, Outcome::Read(value)) => (state == value).then_some(state),
                    (Op::Write(value), _) => Some(Some(value)),
                    (Op::Cas { expected, new }, Outcome::CasOk) => (state == expected).then_some(Some(new)),
                    (Op::Cas { expected, .. }, Outcome::CasFailed) => (state != expected).then_some(state),
                    (Op::Cas { expected, new }, _) => Some(if state == expected { Some(new) } else { state }),
                    (Op::Read, _) => unreachable!("unknown reads are filtered out"),
                };
                if let Some(after) = after {
                    placed[i] = true;
                    if search(ops, placed, after) {
                        return true;
                    }
                    placed[i] = false;
                }
            }
            false
        }
        let ops: Vec<&Operation> = history
            .iter()
            .filter(|op| !matches!((op.op, op.outcome), (_, Outcome::Failed) | (Op::Read, Outcome::Unknown)))
            .collect();
        search(&ops, &mut vec![false; ops.len()], None)
    }

    /// Tiny histories with heavy overlap and arbitrary (mostly impossible) results.
    fn random_small_history(rng: &mut XorShift) -> Vec<Operation> {
        let value = |rng: &mut XorShift| rng.below(4).checked_sub(1).map(|v| v + 1);
        (0..1 + rng.below(6) as usize)
            .map(|client| {
                let invoked = rng.below(30);
                let (op, outcome) = match rng.below(3) {
                    0 => (Op::Read, Outcome::Read(value(rng))),
                    1 => (Op::Write(1 + rng.below(3)), Outcome::Written),
                    _ => {
                        let op = Op::Cas {
                            expected: value(rng),
                            new: 1 + rng.below(3),
                        };
                        (
                            op,
                            if rng.chance(500) {
                                Outcome::CasOk
                            } else {
                                Outcome::CasFailed
                            },
                        )
                    }
                };
                let mut operation = operation(client, "k", op, outcome, invoked, Some(invoked + rng.below(15)));
                match rng.below(20) {
                    0..=2 => operation.outcome = Outcome::Unknown,
                    3 => operation.outcome = Outcome::Failed,
                    4 => operation.completed_ns = None,
                    _ => {}
                }
                operation
            })
            .collect()
    }

    #[test]
    fn search_agrees_with_brute_force_on_small_random_histories() {
        let (mut good, mut bad) = (0, 0);
        for seed in 0..4_000 {
            let history = random_small_history(&mut XorShift::new(seed));
            let expected = brute_force(&history);
            match check(&history) {
                Ok(_) if expected => good += 1,
                Err(CheckError::NotLinearizable(_)) if !expected => bad += 1,
                other => panic!("seed {seed}: brute force says {expected}, check says {other:?} for {history:#?}"),
            }
        }
        assert!(
            good > 800 && bad > 800,
            "{good} linearizable and {bad} not: too lopsided to test both ways"
        );
    }

    #[test]
    fn long_random_history_on_one_key_is_checked() {
        for (clients, unknown_per_mille) in [(5, 0), (10, 0), (10, 2)] {
            let mut rng = XorShift::new(7);
            let sim = Simulation {
                clients,
                keys: 1,
                operations: 2_000,
                values: 5,
                unknown_per_mille,
                failed_per_mille: 10,
            };
            let history = simulate(&mut rng, &sim);
            let started = Instant::now();
            let report = assert_linearizable(&history);
            eprintln!(
                "{} operations, {clients} clients, {} unknown: checked in {:?}",
                report.operations,
                report.indeterminate,
                started.elapsed()
            );
            assert!(report.operations > 1_900);
        }
    }
}
