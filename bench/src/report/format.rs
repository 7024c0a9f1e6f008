//! Number formats and wording every section shares: milliseconds and seconds as the
//! tables print them, target verdicts, the simulated WAN in words, and the "first error"
//! line under a table.

use std::fmt::Write as _;

use crate::peers::WanLink;

/// Milliseconds with two decimals, from microseconds.
pub(super) fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// Milliseconds to the microsecond, for quantities (fsync) that can be far below 1 ms.
pub(super) fn ms3(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// Seconds with two decimals, for durations kept in ms.
pub(super) fn seconds(ms: u64) -> String {
    format!("{:.2}", ms as f64 / 1000.0)
}

/// "yes" / "**no**" for a target verdict.
pub(super) fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

/// "the peer transport delays ... (a ↔ b 80 ms, ...) plus ...": the simulated WAN, in words.
pub(super) fn describe_wan(links: &[WanLink]) -> String {
    let round_trips: Vec<String> = links
        .iter()
        .map(|l| format!("{} ↔ {} {} ms", l.a, l.b, l.rtt_ms))
        .collect();
    let max_jitter = links.iter().map(|l| l.jitter_ms).max().unwrap_or(0);
    format!(
        "the peer transport delays every node-to-node message by half the round trip ({}) plus 0 to RTT/40 ms per \
         direction (at most {max_jitter} ms; `edgekv demo`'s matrix)",
        round_trips.join(", ")
    )
}

/// The first error of a table's runs, on its own line under the table (`|` would end a cell).
pub(super) fn write_first_error(out: &mut String, error: &str) {
    writeln!(out, "\nFirst error: {}", error.replace('|', "/")).unwrap();
}
