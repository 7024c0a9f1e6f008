//! The simulated WAN: per (source region, destination region) one-way delay with jitter,
//! and cut links (partitions). This machine has no netem, so the peer transport applies
//! it in userspace to every node-to-node message. Everything is off unless configured.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use rand::Rng;

/// The state of one directed link between two regions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub one_way_delay_ms: u32,
    pub jitter_ms: u32,
    pub cut: bool,
}

/// Directed links by (from region, to region). A link not listed is instant and up.
pub type Links = BTreeMap<(String, String), Link>;

/// A simulated link between two regions as the configuration file writes it
/// (`[[cluster.wan_links]]`): the same delay in both directions.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanLinkSettings {
    pub a: String,
    pub b: String,
    pub one_way_delay_ms: u32,
    #[serde(default)]
    pub jitter_ms: u32,
}

/// The directed links `settings` describe, both directions of each.
pub fn links_from_settings(settings: &[WanLinkSettings]) -> Links {
    settings
        .iter()
        .flat_map(|l| {
            let link = Link {
                one_way_delay_ms: l.one_way_delay_ms,
                jitter_ms: l.jitter_ms,
                cut: false,
            };
            [((l.a.clone(), l.b.clone()), link), ((l.b.clone(), l.a.clone()), link)]
        })
        .collect()
}

#[derive(Default)]
pub struct Wan {
    links: RwLock<Links>,
}

impl Wan {
    pub fn new(links: Links) -> Self {
        Self {
            links: RwLock::new(links),
        }
    }

    pub fn links(&self) -> Links {
        self.links.read().expect("wan lock").clone()
    }

    pub fn replace(&self, links: Links) {
        *self.links.write().expect("wan lock") = links;
    }

    /// Cuts both directions between two regions.
    pub fn partition(&self, a: &str, b: &str) {
        let mut links = self.links.write().expect("wan lock");
        for (from, to) in [(a, b), (b, a)] {
            links.entry((from.into(), to.into())).or_default().cut = true;
        }
    }

    /// Restores every cut link; delays stay.
    pub fn heal(&self) {
        let mut links = self.links.write().expect("wan lock");
        for link in links.values_mut() {
            link.cut = false;
        }
        links.retain(|_, link| *link != Link::default());
    }

    /// Sets the one-way delay of both directions between two regions.
    pub fn set_latency(&self, a: &str, b: &str, one_way_delay_ms: u32, jitter_ms: u32) {
        let mut links = self.links.write().expect("wan lock");
        for (from, to) in [(a, b), (b, a)] {
            let link = links.entry((from.into(), to.into())).or_default();
            link.one_way_delay_ms = one_way_delay_ms;
            link.jitter_ms = jitter_ms;
        }
        links.retain(|_, link| *link != Link::default());
    }

    /// The delay a message from `from` to `to` suffers now, or `None` when the link is cut.
    pub fn delay(&self, from: &str, to: &str) -> Option<Duration> {
        let links = self.links.read().expect("wan lock");
        let Some(link) = links.get(&(from.to_string(), to.to_string())) else {
            return Some(Duration::ZERO);
        };
        if link.cut {
            return None;
        }
        let jitter = if link.jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=link.jitter_ms)
        };
        Some(Duration::from_millis(u64::from(link.one_way_delay_ms + jitter)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_cuts_both_ways_and_heal_keeps_latency() {
        let wan = Wan::default();
        assert_eq!(wan.delay("a", "b"), Some(Duration::ZERO));
        wan.set_latency("a", "b", 40, 0);
        assert_eq!(wan.delay("b", "a"), Some(Duration::from_millis(40)));
        wan.partition("a", "b");
        assert_eq!(wan.delay("a", "b"), None);
        assert_eq!(wan.delay("b", "a"), None);
        assert_eq!(wan.delay("a", "c"), Some(Duration::ZERO));
        wan.heal();
        assert_eq!(wan.delay("a", "b"), Some(Duration::from_millis(40)));
        wan.set_latency("a", "b", 0, 0);
        assert!(wan.links().is_empty());
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let wan = Wan::default();
        wan.set_latency("a", "b", 10, 5);
        for _ in 0..100 {
            let delay = wan.delay("a", "b").unwrap();
            assert!((10..=15).contains(&(delay.as_millis() as u64)), "{delay:?}");
        }
    }
}
