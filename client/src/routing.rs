//! Where each request goes.
//!
//! A client knows a set of nodes, each in a region, and its own region. Eventual reads go
//! to the nodes of its own region (spread round robin; every region holds a full copy),
//! failing over to the other regions. Writes and strong reads go to the Raft leader once a
//! node has named it (followers answer with the leader's address in `edgekv-leader`
//! metadata), otherwise to the nearest node, which forwards them. A leader that stops
//! answering is forgotten and the nearest node takes over again.

use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use edgekv_proto::grpc_status::leader_named;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::error::{Error, Result};

/// Which node a request should reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Writes and strong reads: the leader when known.
    Leader,
    /// Eventual reads: a node of the client's own region.
    Local,
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub url: String,
    pub region: Option<String>,
    pub channel: Channel,
}

pub(crate) struct Router {
    /// Own-region nodes first, then the others, in the order given.
    nodes: Vec<Node>,
    /// How many of `nodes` are in the client's own region (at least 1).
    local: usize,
    next_local: AtomicUsize,
    follow_leader: bool,
    leader: RwLock<Option<Node>>,
    dialer: Dialer,
    /// The scheme of the leader a node names by address: `https` when the client reaches
    /// the cluster over TLS.
    leader_scheme: &'static str,
}

/// How the client reaches nodes: plaintext for `http://` URLs, TLS for `https://` ones
/// (trusting the given CA, or else the system's roots).
#[derive(Clone, Debug)]
pub(crate) struct Dialer {
    tls: ClientTlsConfig,
}

impl Dialer {
    /// `ca_pem`: the certificate (PEM) of the CA that signed the nodes' certificates.
    pub(crate) fn new(ca_pem: Option<&[u8]>) -> Self {
        let tls = match ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        Self { tls }
    }

    pub(crate) fn endpoint(&self, url: &str) -> Result<Endpoint> {
        // tonic's own message ("transport error") hides the cause; the chain names it.
        let invalid = |e: tonic::transport::Error| Error::Endpoint {
            endpoint: url.to_string(),
            reason: crate::error::chain(&e),
        };
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(invalid)?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if url.starts_with("https://") {
            endpoint = endpoint.tls_config(self.tls.clone()).map_err(invalid)?;
        }
        Ok(endpoint)
    }
}

impl Router {
    pub(crate) fn new(mut nodes: Vec<Node>, region: Option<&str>, follow_leader: bool, dialer: Dialer) -> Self {
        let leader_scheme = if nodes.iter().any(|n| n.url.starts_with("https://")) {
            "https"
        } else {
            "http"
        };
        // Stable: keeps the caller's order within each group.
        nodes.sort_by_key(|n| region.is_some() && n.region.as_deref() != region);
        let local = match region {
            Some(region) => nodes
                .iter()
                .filter(|n| n.region.as_deref() == Some(region))
                .count()
                .max(1),
            None => 1,
        };
        Self {
            nodes,
            local,
            next_local: AtomicUsize::new(0),
            follow_leader,
            leader: RwLock::new(None),
            dialer,
            leader_scheme,
        }
    }

    /// The node for the `attempt`-th try (0 first) of a request on `route`.
    pub(crate) fn pick(&self, route: Route, attempt: usize) -> Node {
        if route == Route::Leader
            && attempt == 0
            && let Some(leader) = self.leader.read().expect("leader lock").clone()
        {
            return leader;
        }
        let start = match route {
            Route::Local => self.next_local.fetch_add(1, Ordering::Relaxed) % self.local,
            Route::Leader => 0,
        };
        // Later attempts walk on through the local nodes, then the rest.
        let index = if attempt < self.local {
            (start + attempt) % self.local
        } else {
            attempt.min(self.nodes.len() - 1)
        };
        self.nodes[index].clone()
    }

    /// Whether requests may move to a leader (not `stay_local`).
    pub(crate) fn follows_leader(&self) -> bool {
        self.follow_leader
    }

    /// How many distinct nodes a request may try.
    pub(crate) fn attempts(&self) -> usize {
        self.nodes.len().max(1)
    }

    /// Learns the leader from an answer's metadata, if it names one.
    pub(crate) fn observe(&self, metadata: &tonic::metadata::MetadataMap) {
        if !self.follow_leader {
            return;
        }
        let Some(addr) = leader_named(metadata) else {
            return;
        };
        let url = format!("{}://{addr}", self.leader_scheme);
        if self
            .leader
            .read()
            .expect("leader lock")
            .as_ref()
            .is_some_and(|l| l.url == url)
        {
            return;
        }
        let known = self.nodes.iter().find(|n| n.url.trim_end_matches('/') == url).cloned();
        let node = match known {
            Some(node) => node,
            None => match self.dialer.endpoint(&url) {
                Ok(endpoint) => Node {
                    url,
                    region: None,
                    channel: endpoint.connect_lazy(),
                },
                Err(_) => return,
            },
        };
        *self.leader.write().expect("leader lock") = Some(node);
    }

    /// Forgets a leader that did not answer; the nearest node forwards again.
    pub(crate) fn leader_failed(&self, node: &Node) {
        let mut leader = self.leader.write().expect("leader lock");
        if leader.as_ref().is_some_and(|l| l.url == node.url) {
            *leader = None;
        }
    }

    /// The leader currently used for writes, if known.
    pub(crate) fn leader_url(&self) -> Option<String> {
        self.leader.read().expect("leader lock").as_ref().map(|l| l.url.clone())
    }
}
