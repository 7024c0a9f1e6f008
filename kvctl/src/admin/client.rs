//! The leader-following admin client: how kvctl reaches a node's `edgekv.v1.Admin` service
//! (plaintext or TLS, by the URL's scheme), that service with the bearer token attached to
//! every request, where to resend a membership change the node refused for not being the
//! leader, and how a refusal from the server reads as a kvctl failure.

use std::time::Duration;

use edgekv_proto::ErrorCode;
use edgekv_proto::grpc_status::{code_implied_by_transport, code_of, leader_named};
use edgekv_proto::v1::{self as pb, admin_client::AdminClient, inject_fault_request::Fault};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::Change;
use crate::Failure;
use crate::tls::is_https;

/// The bearer token as request metadata.
pub(super) fn authorization(endpoint: &str, token: Option<String>) -> Result<Option<MetadataValue<Ascii>>, Failure> {
    token
        .map(|t| {
            format!("Bearer {t}")
                .parse::<MetadataValue<Ascii>>()
                .map_err(|_| Failure {
                    code: 3,
                    message: format!("invalid endpoint {endpoint:?}: the token must be printable ASCII"),
                })
        })
        .transpose()
}

/// How kvctl reaches admin services: plaintext for `http://` URLs, TLS for `https://` ones
/// (trusting the `--cacert` CA, or else the system's roots, as the SDK's dialer does), the
/// same for the node given and for a leader it names; every request carries the token.
pub(super) struct Dialer {
    tls: ClientTlsConfig,
    authorization: Option<MetadataValue<Ascii>>,
}

impl Dialer {
    /// `ca_pem`: the CA certificate(s) (PEM) `--cacert` read, already checked.
    pub(super) fn new(ca_pem: Option<&[u8]>, authorization: Option<MetadataValue<Ascii>>) -> Self {
        let tls = match ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        Self { tls, authorization }
    }

    pub(super) async fn connect(&self, url: &str) -> Result<Node, Failure> {
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Failure {
                code: 3,
                message: format!("invalid endpoint {url:?}: {e}"),
            })?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if is_https(url) {
            // Fails when there are no system roots to trust and no --cacert.
            endpoint = endpoint.tls_config(self.tls.clone()).map_err(|e| Failure {
                code: 3,
                message: format!("cannot set up TLS for {url}: {}", edgekv_client::error::chain(&e)),
            })?;
        }
        let channel = endpoint.connect().await.map_err(|e| Failure {
            code: 3,
            message: format!(
                "UNAVAILABLE: cannot connect to {url}: {}",
                edgekv_client::error::chain(&e)
            ),
        })?;
        Ok(Node {
            url: url.to_string(),
            admin: AdminClient::new(channel),
            authorization: self.authorization.clone(),
        })
    }
}

/// One node's admin service.
pub(super) struct Node {
    url: String,
    admin: AdminClient<Channel>,
    authorization: Option<MetadataValue<Ascii>>,
}

impl Node {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(authorization) = &self.authorization {
            request.metadata_mut().insert("authorization", authorization.clone());
        }
        request
    }

    pub(super) async fn cluster_status(&mut self) -> Result<pb::ClusterStatusResponse, tonic::Status> {
        let request = self.request(pb::ClusterStatusRequest {});
        Ok(self.admin.cluster_status(request).await?.into_inner())
    }

    pub(super) async fn change(&mut self, change: Change) -> Result<pb::ClusterStatusResponse, tonic::Status> {
        let answer = match change {
            Change::Add(add) => {
                let request = self.request(add);
                self.admin.add_member(request).await
            }
            Change::Promote(id) => {
                let request = self.request(pb::MemberRequest { id });
                self.admin.promote_member(request).await
            }
            Change::Remove(id) => {
                let request = self.request(pb::MemberRequest { id });
                self.admin.remove_member(request).await
            }
        };
        Ok(answer?.into_inner())
    }

    pub(super) async fn inject_fault(&mut self, fault: Fault) -> Result<pb::InjectFaultResponse, tonic::Status> {
        let request = self.request(pb::InjectFaultRequest { fault: Some(fault) });
        Ok(self.admin.inject_fault(request).await?.into_inner())
    }

    pub(super) async fn set_keyspace_class(
        &mut self,
        request: pb::SetKeyspaceClassRequest,
    ) -> Result<pb::KeyspaceResponse, tonic::Status> {
        let request = self.request(request);
        Ok(self.admin.set_keyspace_class(request).await?.into_inner())
    }

    pub(super) async fn list_keyspace(&mut self) -> Result<pb::KeyspaceResponse, tonic::Status> {
        let request = self.request(pb::ListKeyspaceRequest {});
        Ok(self.admin.list_keyspace(request).await?.into_inner())
    }

    /// Where to send a membership change this node refused, if it refused it for not being
    /// the leader: the address it named, or else the leader's client address from its status.
    pub(super) async fn leader_after(&mut self, refusal: &tonic::Status) -> Option<String> {
        let named = leader_named(refusal.metadata()).map(|addr| leader_url(&self.url, addr));
        let leader = match named {
            Some(url) => url,
            None => {
                if code_of(refusal) != Some(ErrorCode::Unavailable) {
                    return None;
                }
                let status = self.cluster_status().await.ok()?;
                if status.leader_id == 0 || status.leader_id == status.node_id {
                    return None;
                }
                let member = status.members.iter().find(|m| m.id == status.leader_id)?;
                if member.api_addr.is_empty() {
                    return None;
                }
                leader_url(&self.url, &member.api_addr)
            }
        };
        (leader != self.url).then_some(leader)
    }
}

/// `host:port` from the server becomes a URL with the scheme of the node kvctl was given
/// (`node_url`), as the SDK does: the nodes of a cluster all serve TLS or none does, and a
/// leader dialled over plaintext would refuse the connection or send the token in clear.
fn leader_url(node_url: &str, addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else if is_https(node_url) {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

/// `CODE: message`, with the server's stable code when it sent one.
pub(super) fn failure(status: &tonic::Status) -> Failure {
    let implied = code_implied_by_transport(status);
    let message = match code_of(status).or(implied) {
        Some(code) => format!("{code}: {}", status.message()),
        None => match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                format!("UNAVAILABLE: {} ({:?})", status.message(), status.code())
            }
            tonic::Code::Unimplemented => format!(
                "unexpected answer from the server: {} ({:?}; is the node older than this kvctl?)",
                status.message(),
                status.code()
            ),
            code => format!("unexpected answer from the server: {} ({code:?})", status.message()),
        },
    };
    Failure { code: 3, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_addresses_become_urls() {
        let plain = "http://127.0.0.1:7071";
        let tls = "https://127.0.0.1:7071";
        assert_eq!(leader_url(plain, "127.0.0.1:7070"), "http://127.0.0.1:7070");
        assert_eq!(leader_url(tls, "127.0.0.1:7070"), "https://127.0.0.1:7070");
        assert_eq!(leader_url(plain, "https://kv.example:443"), "https://kv.example:443");
        assert_eq!(leader_url(tls, "http://kv.example:80"), "http://kv.example:80");
    }
}
