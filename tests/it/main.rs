//! Herald's end-to-end suite, one test binary: the four service binaries as processes, `herald up`
//! as a process, and the deployment files, against a real nats-server, PostgreSQL and HTTP
//! receivers. Each module is one concern; what they share is in `support`.

mod support;

mod auth;
mod backfill;
mod backfill_csv;
mod bench;
mod cli;
mod dashboard_browser;
mod dead_letters;
mod deliveries_cli;
mod demo;
mod demo_kinds;
mod deploy;
mod digests;
mod end_to_end;
mod faults;
mod ledger;
mod migrate;
mod notify_replicas;
mod observability;
mod secrets;
mod standalone;
mod statements;
mod verification;
