//! tasker-web against real servers on 127.0.0.1: a guarded API, a JWKS endpoint, HTTP clients.

mod attacks;
mod jwks;
mod problems;
mod routes;
mod support;
