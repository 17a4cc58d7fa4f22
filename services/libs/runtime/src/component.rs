//! What a service contributes to a process: HTTP routes, a gRPC API and background tasks, built from
//! the dependencies it is given. A service's own binary serves one component; `herald up` serves all
//! four on one HTTP and one gRPC listener.

use std::{future::Future, pin::Pin, sync::Arc};

use herald_events::Bus;
use tonic::server::NamedService;

use crate::db::Database;

/// What a service needs from outside: the bus and its database.
#[derive(Clone)]
pub struct Deps {
    pub bus: Arc<dyn Bus>,
    pub db: Database,
}

pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Adds one gRPC service to the process's routes.
pub type GrpcService = Box<dyn FnOnce(&mut tonic::service::RoutesBuilder) + Send>;

/// A service's contribution to a process.
#[derive(Default)]
pub struct Component {
    pub http: axum::Router,
    pub grpc: Vec<GrpcService>,
    /// gRPC service names to report as serving on `grpc.health.v1`.
    pub grpc_names: Vec<&'static str>,
    pub tasks: Vec<(&'static str, Task)>,
}

impl Component {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds HTTP routes (merged with the others of the process).
    pub fn routes(mut self, router: axum::Router) -> Self {
        self.http = self.http.merge(router);
        self
    }

    /// Adds a gRPC service.
    pub fn grpc<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        // tonic gives each set of routes its own fallback, so services are added to one builder
        // rather than merged as routers.
        self.grpc.push(Box::new(move |routes| {
            routes.add_service(service);
        }));
        self.grpc_names.push(S::NAME);
        self
    }

    /// Adds a task that runs until shutdown (a consume loop, a dispatcher).
    pub fn task(
        mut self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.tasks.push((name, Box::pin(task)));
        self
    }
}
