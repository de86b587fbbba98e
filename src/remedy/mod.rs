//! The remedy stage: put right what a blocking violation names, prove it with
//! a fresh snapshot, and survive a crash half-way.
//!
//! * [`plan`] — which steps (pure);
//! * [`apply`] — carrying them out, journalled, and waiting for redeploys;
//! * [`journal`] — the write-ahead record `resume` finishes from;
//! * [`session`] — one attempt: owns the journal, refuses to act without it;
//! * [`lock`] — one remedy at a time per environment.

pub mod apply;
pub mod journal;
pub mod lock;
pub mod plan;
pub mod session;
