//! Group commit for the audit trail. Every request that read personal data
//! must have its trail on the record before its answer leaves, and the
//! trail is one HMAC chain, so appends take turns. One writer thread takes
//! whatever requests are waiting and appends them all in one transaction,
//! each request as one entry naming every object it read or changed: under
//! load a turn on the chain serves many requests instead of one.

use std::sync::mpsc;

use chrono::{DateTime, Utc};
use store::{AuditEvent, Store};

/// Requests appended in one transaction at most; more wait for the next.
const MAX_BATCH: usize = 256;

/// Why an append did not happen; the request answers INTERNAL.
#[derive(Debug, thiserror::Error)]
pub enum AuditWriteError {
    #[error("audit trail: {0}")]
    Store(String),
    #[error("the audit writer has stopped")]
    Stopped,
}

struct Job {
    events: Vec<AuditEvent>,
    at: DateTime<Utc>,
    /// The events go back with the answer, for the detection rules.
    done: tokio::sync::oneshot::Sender<Result<Vec<AuditEvent>, AuditWriteError>>,
}

/// A handle to the writer thread; the thread ends when every handle is
/// dropped.
#[derive(Clone)]
pub struct AuditWriter {
    jobs: mpsc::Sender<Job>,
}

impl AuditWriter {
    pub fn start(store: Store) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("kluis-audit".to_owned())
            .spawn(move || write_all(&store, &queue))?;
        Ok(Self { jobs })
    }

    /// Appends one request's events (each at `at`), waits until they are
    /// committed and hands them back.
    pub async fn append(
        &self,
        events: Vec<AuditEvent>,
        at: DateTime<Utc>,
    ) -> Result<Vec<AuditEvent>, AuditWriteError> {
        let (done, committed) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job { events, at, done })
            .map_err(|_| AuditWriteError::Stopped)?;
        committed.await.map_err(|_| AuditWriteError::Stopped)?
    }
}

fn write_all(store: &Store, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let batches: Vec<(&[AuditEvent], DateTime<Utc>)> = jobs
            .iter()
            .map(|job| (job.events.as_slice(), job.at))
            .collect();
        let result = store.audit_batches(&batches);
        if let Err(error) = &result {
            tracing::error!(error = %error, requests = jobs.len(), "audit append failed");
        }
        for job in jobs {
            let answer = match &result {
                Ok(()) => Ok(job.events),
                Err(error) => Err(AuditWriteError::Store(error.to_string())),
            };
            // A request that gave up waiting has nothing left to answer.
            let _ignored = job.done.send(answer);
        }
    }
}
