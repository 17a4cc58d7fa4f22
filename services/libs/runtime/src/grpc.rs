//! Serving a gRPC API with `grpc.health.v1` and server reflection beside it.

use std::convert::Infallible;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{body::Body, server::NamedService, service::Routes, transport::Server};

/// Serves `service` on `listener` until `shutdown`, with health (reporting `service` as serving)
/// and reflection over every Herald proto.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<S>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(herald_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| {
            // The descriptor set is generated at build time; it cannot be invalid at run time.
            tracing::error!(error = %e, "reflection descriptor rejected");
            e
        });
    let mut routes = Routes::new(health).add_service(service);
    if let Ok(reflection) = reflection {
        routes = routes.add_service(reflection);
    }
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}
