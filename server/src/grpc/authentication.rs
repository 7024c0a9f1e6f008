//! Authenticating every gRPC call before its handler runs (and before its body is decoded):
//! the interceptor turns the `authorization` metadata into the [`Principal`] the call acts
//! as, or refuses the call with `UNAUTHENTICATED`; handlers take the principal back out of
//! the request to check what the call asks for.

use std::sync::Arc;

use edgekv_proto::ErrorCode;
use edgekv_proto::grpc_status::status;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::auth::{AuthError, Authenticator, Principal};

#[derive(Clone)]
pub(super) struct Authenticate {
    pub authenticator: Arc<Authenticator>,
}

impl Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let authorization = match request.metadata().get("authorization") {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                Status::from(AuthError::Unauthenticated(edgekv_proto::token::TokenError::Malformed(
                    "the authorization metadata is not printable ASCII".into(),
                )))
            })?),
        };
        let principal = self.authenticator.authenticate_header(authorization)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The principal the interceptor authenticated this call as.
pub(super) fn principal<T>(request: &mut Request<T>) -> Result<Principal, Status> {
    request.extensions_mut().remove::<Principal>().ok_or_else(|| {
        // Every service is added behind the interceptor; reaching this is a wiring bug.
        status(ErrorCode::Internal, "the call was not authenticated")
    })
}
