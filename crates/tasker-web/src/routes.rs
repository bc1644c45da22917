//! The route table: every route of an API declares its access (public, or one permission) in
//! one table, and [`ApiRouter::build`] refuses a router whose handlers and table disagree, at
//! startup.

use axum::Router;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};

use crate::auth::Authenticator;
use crate::permission::Permission;
use crate::problem::{Problem, ProblemKind};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, the API document).
    Public,
    /// An authenticated principal with this permission.
    Requires(Permission),
}

/// One row of a route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The method.
    pub method: Method,
    /// The path, in axum's syntax (`/v1/tasks/{task_uuid}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// Why the router and its table disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteTableError {
    /// A handler was given for a route the table does not declare.
    #[error(
        "route {method} {path} has a handler but no entry in the route table (hint: declare its access)"
    )]
    Undeclared {
        /// The method.
        method: Method,
        /// The path.
        path: String,
    },
    /// The table declares a route no handler serves.
    #[error("route {method} {path} is declared in the route table but has no handler")]
    Unrouted {
        /// The method.
        method: Method,
        /// The path.
        path: String,
    },
    /// Two handlers for one route.
    #[error("route {method} {path} has two handlers")]
    Duplicate {
        /// The method.
        method: Method,
        /// The path.
        path: String,
    },
    /// The method is not one axum routes.
    #[error("route {method} {path}: the method cannot be routed")]
    UnroutableMethod {
        /// The method.
        method: Method,
        /// The path.
        path: String,
    },
}

/// Builds a router from a route table and handlers; every route is guarded by its declared
/// access.
#[derive(Debug)]
pub struct ApiRouter<S> {
    table: &'static [RouteSpec],
    routed: Vec<bool>,
    router: Router<S>,
    auth: Authenticator,
    errors: Vec<RouteTableError>,
}

impl<S> ApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// A router for `table`, authenticating with `auth`.
    pub fn new(table: &'static [RouteSpec], auth: Authenticator) -> Self {
        Self {
            table,
            routed: vec![false; table.len()],
            router: Router::new(),
            auth,
            errors: Vec::new(),
        }
    }

    /// Serves `method path` with `handler`, guarded by the table's access for it.
    pub fn route<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let Some(index) = self
            .table
            .iter()
            .position(|spec| spec.method == method && spec.path == path)
        else {
            self.errors.push(RouteTableError::Undeclared {
                method,
                path: path.to_owned(),
            });
            return self;
        };
        if std::mem::replace(&mut self.routed[index], true) {
            self.errors.push(RouteTableError::Duplicate {
                method,
                path: path.to_owned(),
            });
            return self;
        }
        let Ok(filter) = MethodFilter::try_from(method.clone()) else {
            self.errors.push(RouteTableError::UnroutableMethod {
                method,
                path: path.to_owned(),
            });
            return self;
        };
        let guard = Guard {
            auth: self.auth.clone(),
            access: self.table[index].access,
        };
        let route =
            on(filter, handler).route_layer(middleware::from_fn_with_state(guard, guard_route));
        self.router = self.router.route(path, route);
        self
    }

    /// The router, if every handler is declared and every declared route has a handler.
    pub fn build(mut self) -> Result<Router<S>, Vec<RouteTableError>> {
        for (spec, routed) in self.table.iter().zip(&self.routed) {
            if !routed {
                self.errors.push(RouteTableError::Unrouted {
                    method: spec.method.clone(),
                    path: spec.path.to_owned(),
                });
            }
        }
        if self.errors.is_empty() {
            Ok(self.router)
        } else {
            Err(self.errors)
        }
    }
}

#[derive(Debug, Clone)]
struct Guard {
    auth: Authenticator,
    access: Access,
}

async fn guard_route(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let Access::Requires(permission) = guard.access else {
        return next.run(request).await;
    };
    let principal = match guard.auth.authenticate(request.headers()).await {
        Ok(principal) => principal,
        Err(failure) => return guard.auth.problem(&failure).into_response(),
    };
    if !principal.allows(permission) {
        if let Some(metrics) = guard.auth.metrics() {
            metrics.permission_denied(permission.as_str());
        }
        tracing::info!(subject = principal.subject, %permission, "a request was denied");
        return Problem::new(
            ProblemKind::Forbidden,
            format!("This request needs the permission `{permission}`."),
        )
        .into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}
