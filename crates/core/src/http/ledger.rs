//! The write ledger: what a run sent and changed, and in `--dry-run` the plan of the writes it
//! would have sent (method, URL, body with secrets redacted). The harness reads it to record
//! `steps.<tool>` (`changed`, `dataverse_changed`, `planned_writes`, `plan`) and to leave a
//! `--state` file untouched by a failed run that sent no write.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::redact;
use super::request::{Body, Request, Service};

#[derive(Debug, Default)]
pub struct Ledger {
    plan: Mutex<Vec<Value>>,
    /// Writes that succeeded (none in a dry run).
    writes: AtomicUsize,
    /// Writes sent (or planned, in a dry run), whatever their answer: a run that failed with
    /// none has changed nothing, so its `--state` file is left byte-identical.
    attempted_writes: AtomicUsize,
    /// Writes to the Dynamics org that succeeded (planned, in a dry run): what makes a publish
    /// of customizations owed (`steps.<tool>.dataverse_changed`).
    dataverse_writes: AtomicUsize,
    requests: AtomicUsize,
}

/// A write to a service (a sign-in's POST to the token endpoint changes nothing).
fn changes_something(req: &Request) -> bool {
    req.is_write() && req.service != Service::Login
}

impl Ledger {
    /// A write of a dry run: added to the plan, not sent.
    pub(crate) fn plan(&self, req: &Request) {
        self.attempted_writes.fetch_add(1, Ordering::Relaxed);
        if req.service == Service::Dataverse {
            self.dataverse_writes.fetch_add(1, Ordering::Relaxed);
        }
        let body = match &req.body {
            Some(Body::Json(v)) => redact::json(v),
            Some(Body::Form(f)) => Value::String(redact::form(f)),
            None => Value::Null,
        };
        let mut entry = json!({"method": req.method.as_str(), "url": req.url});
        if !body.is_null() {
            entry["body"] = body;
        }
        self.plan
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
    }

    /// A request is about to be sent (its first attempt).
    pub(crate) fn sending(&self, req: &Request) {
        if changes_something(req) {
            self.attempted_writes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One attempt went out.
    pub(crate) fn attempt_sent(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// `req` was answered with `status`, which it takes as its result.
    pub(crate) fn answered(&self, req: &Request, status: u16) {
        if changes_something(req) && (200..300).contains(&status) {
            self.writes.fetch_add(1, Ordering::Relaxed);
            if req.service == Service::Dataverse {
                self.dataverse_writes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts a change made outside HTTP (teardown deleting the local secret file, make-secret
    /// restoring its mode), so
    /// `steps.<tool>.changed` tells the truth. Never call it in `--dry-run`.
    pub fn count_local_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.attempted_writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes that succeeded: `steps.<tool>.changed` is true exactly when this is non-zero.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }
    /// Writes sent or planned, successful or not.
    pub fn attempted_writes(&self) -> usize {
        self.attempted_writes.load(Ordering::Relaxed)
    }
    /// Successful (or, in a dry run, planned) writes to the Dynamics org.
    pub fn dataverse_writes(&self) -> usize {
        self.dataverse_writes.load(Ordering::Relaxed)
    }
    /// Attempts sent, reads and writes alike.
    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
    /// The dry run's plan, taken once.
    pub fn take_plan(&self) -> Vec<Value> {
        std::mem::take(&mut *self.plan.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
