//! Tests of the reference workflow: pure units here, the end-to-end runs against PostgreSQL
//! and RabbitMQ in the submodules.
