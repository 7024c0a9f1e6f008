//! The leader-following admin client: one node's `edgekv.v1.Admin` service with the bearer
//! token attached to every request, where to resend a membership change the node refused
//! for not being the leader, and how a refusal from the server reads as a kvctl failure.

use std::time::Duration;

use edgekv_proto::ErrorCode;
use edgekv_proto::grpc_status::{code_implied_by_transport, code_of, leader_named};
use edgekv_proto::v1::{self as pb, admin_client::AdminClient, inject_fault_request::Fault};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use super::Change;
use crate::Failure;

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

/// One node's admin service.
pub(super) struct Node {
    url: String,
    admin: AdminClient<Channel>,
    authorization: Option<MetadataValue<Ascii>>,
}

impl Node {
    pub(super) async fn connect(url: &str, authorization: Option<MetadataValue<Ascii>>) -> Result<Self, Failure> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Failure {
                code: 3,
                message: format!("invalid endpoint {url:?}: {e}"),
            })?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let channel = endpoint.connect().await.map_err(|e| Failure {
            code: 3,
            message: format!(
                "UNAVAILABLE: cannot connect to {url}: {}",
                edgekv_client::error::chain(&e)
            ),
        })?;
        Ok(Self {
            url: url.to_string(),
            admin: AdminClient::new(channel),
            authorization,
        })
    }

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
        let named = leader_named(refusal.metadata()).map(leader_url);
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
                leader_url(&member.api_addr)
            }
        };
        (leader != self.url).then_some(leader)
    }
}

/// `host:port` from the server becomes `http://host:port`, as the SDK does.
fn leader_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
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
        assert_eq!(leader_url("127.0.0.1:7070"), "http://127.0.0.1:7070");
        assert_eq!(leader_url("https://kv.example:443"), "https://kv.example:443");
    }
}
