//! Herald's end-to-end suite, one test binary: the four service binaries as processes, `herald up`
//! as a process, and the deployment files, against a real nats-server, PostgreSQL and HTTP
//! receivers. Each module is one concern; what they share is in `support`.

mod support;

mod backfill;
mod backfill_csv;
mod cli;
mod dead_letters;
mod demo;
mod demo_kinds;
mod deploy;
mod end_to_end;
mod ledger;
mod secrets;
mod standalone;
mod verification;
