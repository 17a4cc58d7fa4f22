//! Serving gRPC APIs with `grpc.health.v1` and server reflection beside them.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{service::Routes, transport::Server};

/// Serves several gRPC APIs (already merged into `routes`) with health reporting each of `names`
/// as serving, and reflection, each call checked against `auth`, until `shutdown`.
pub async fn serve_routes(
    listener: TcpListener,
    routes: Routes,
    names: Vec<&'static str>,
    auth: crate::Auth,
    tls: Option<crate::tls::Tls>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in names {
        reporter
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let mut routes = routes.add_service(health);
    match tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(herald_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
    {
        Ok(reflection) => routes = routes.add_service(reflection),
        Err(e) => tracing::error!(error = %e, "reflection descriptor rejected"),
    }
    // Each response goes out at once: with Nagle's algorithm, HTTP/2's separate frames waited for
    // the client's delayed acknowledgement (about 40 ms a call).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut server = Server::builder();
    if let Some(tls) = &tls {
        server = server.tls_config(tls.grpc())?;
    }
    server
        .layer(auth.grpc_layer())
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}
