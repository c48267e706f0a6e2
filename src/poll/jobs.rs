//! Durable jobs reach the worker of their bus: beside each worker a claimer
//! takes the bus's queued jobs from the database (`FOR UPDATE SKIP
//! LOCKED`) and hands them to the worker through its in-process inbox, so
//! the worker itself never waits for the database to learn of work.
//!
//! A claimer looks when a new job is announced (`LISTEN jobs`, see
//! [`spawn_job_listener`]) and at least every [`LOOK_EVERY`]. Before its
//! first look it settles what a previous worker of the bus left running:
//! reads and scans are queued again, commands fail as `interrupted`. A
//! worker replaced for a new transport may still be finishing a command
//! then: the command's end it reports is not recorded over `interrupted`
//! (a job ends once), so the record errs on the side of "may have reached
//! the meter". Only the instance polling a bus claims its jobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};

use super::command::{BusCommand, Write};
use crate::domain::clock::Clock;
use crate::domain::command::Command;
use crate::domain::event::EventKind;
use crate::domain::ids::BusId;
use crate::domain::job::{JobErrorCode, JobKind};
use crate::shutdown::Shutdown;
use crate::store::command_jobs::fetch_clock_sets;
use crate::store::events::insert_event;
use crate::store::jobs::{
    CLAIM_BATCH, JobListener, JobRow, claim_jobs, update_expired_field_programming, update_interrupted_jobs,
    update_job_finished,
};
use crate::store::scans::ScanParameters;

/// How often a claimer looks for jobs without being told of one.
pub(crate) const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How long to wait before listening again after the listener failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(2);

/// The wake-up of every claimer of this instance, by bus.
#[derive(Debug, Default)]
pub(crate) struct JobWakers {
    wakers: Mutex<HashMap<BusId, Arc<Notify>>>,
}

impl JobWakers {
    /// The wake-up of a bus's claimer.
    pub(crate) fn register(&self, bus: BusId) -> Arc<Notify> {
        let mut wakers = self.wakers.lock().expect("wakers lock");
        Arc::clone(wakers.entry(bus).or_default())
    }

    fn wake(&self, bus: BusId) {
        if let Some(waker) = self.wakers.lock().expect("wakers lock").get(&bus) {
            waker.notify_one();
        }
    }
}

/// Listens for new jobs and wakes their bus's claimer, until `shutdown`.
pub(crate) fn spawn_job_listener(
    pool: PgPool,
    wakers: Arc<JobWakers>,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let listened = async {
                let mut listener = JobListener::connect(&pool).await?;
                loop {
                    if let Some(bus) = listener.next().await? {
                        wakers.wake(bus);
                    }
                }
            };
            tokio::select! {
                () = shutdown.wait() => return,
                result = listened => {
                    let result: Result<(), crate::store::StoreError> = result;
                    if let Err(error) = result {
                        tracing::debug!(%error, "not listening for new jobs; claimers look at their interval");
                    }
                }
            }
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(RELISTEN_AFTER) => {}
            }
        }
    })
}

/// Claims the bus's jobs for its worker until `shutdown` fires or the
/// worker's inbox closes.
pub(crate) async fn run_claimer(
    pool: PgPool,
    bus: BusId,
    inbox: mpsc::Sender<BusCommand>,
    wake: Arc<Notify>,
    clock: Clock,
    shutdown: Shutdown,
) {
    let mut settled = false;
    loop {
        if !settled {
            match update_interrupted_jobs(&pool, bus).await {
                Ok((requeued, failed)) => {
                    if requeued + failed > 0 {
                        tracing::info!(%bus, requeued, failed, "jobs left running by a previous worker settled");
                    }
                    settled = true;
                }
                Err(error) => tracing::warn!(%bus, %error, "cannot settle the jobs left running; will retry"),
            }
        }
        if settled {
            expire_field_programming(&pool, bus, &clock).await;
            match claim_jobs(&pool, bus, clock.now()).await {
                Ok(jobs) => {
                    let claimed_all = jobs.len() < CLAIM_BATCH;
                    for job in jobs {
                        if let Some(command) = bus_command(&pool, job).await
                            && inbox.send(command).await.is_err()
                        {
                            return;
                        }
                    }
                    if !claimed_all {
                        continue;
                    }
                }
                Err(error) => tracing::warn!(%bus, %error, "cannot claim jobs; will retry"),
            }
        }
        tokio::select! {
            () = shutdown.wait() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(LOOK_EVERY) => {}
            () = inbox.closed() => return,
        }
    }
}

/// Fails the commands whose field programming window never opened, with
/// an event on their device.
async fn expire_field_programming(pool: &PgPool, bus: BusId, clock: &Clock) {
    let now = clock.now();
    match update_expired_field_programming(pool, bus, now).await {
        Ok(devices) => {
            for device in devices {
                tracing::warn!(%bus, %device, "a command waited for field programming in vain");
                let message = "a command waited for the meter's programming window, which was not opened in time";
                if let Err(error) = insert_event(pool, device, &EventKind::FieldProgrammingExpired, message, now).await
                {
                    tracing::warn!(%device, %error, "cannot record the expired field programming");
                }
            }
        }
        Err(error) => tracing::warn!(%bus, %error, "cannot expire commands awaiting field programming; will retry"),
    }
}

/// What the worker is to do for a claimed job; `None` (and the job failed)
/// when its parameters cannot be read.
async fn bus_command(pool: &PgPool, job: JobRow) -> Option<BusCommand> {
    let command = match (job.kind, job.device_id) {
        (JobKind::ReadNow, Some(device)) => Some(BusCommand::ReadNow { job: job.id, device }),
        (JobKind::Scan, _) => serde_json::from_value::<ScanParameters>(job.parameters.0.clone())
            .ok()
            .map(|scan| BusCommand::Scan {
                job: job.id,
                first: scan.first_address,
                last: scan.last_address,
            }),
        // A command queued before commands were typed has no `kind`, and
        // fails here rather than be guessed at.
        (JobKind::Command, Some(device)) => {
            serde_json::from_value::<Command>(job.parameters.0.clone())
                .ok()
                .map(|command| {
                    BusCommand::Write(Box::new(Write {
                        job: job.id,
                        device,
                        command,
                        field_programming_deadline: job
                            .progress
                            .0
                            .get("deadline")
                            .and_then(|deadline| serde_json::from_value(deadline.clone()).ok()),
                        clock_sets: HashMap::new(),
                    }))
                })
        }
        _ => None,
    };
    let command = match command {
        Some(BusCommand::Write(mut write)) if write.needs_clock_sets() => {
            match fetch_clock_sets(pool, job.bus_id).await {
                Ok(sets) => {
                    write.clock_sets = sets;
                    return Some(BusCommand::Write(write));
                }
                Err(error) => {
                    // Not knowing whether the clock was set today, do not set it.
                    let refusal = (JobErrorCode::Store, "cannot look up the device's last clock set");
                    tracing::warn!(job = job.id, %error, "cannot look up the last clock sets");
                    if let Err(error) = update_job_finished(pool, job.id, Err(refusal)).await {
                        tracing::warn!(job = job.id, %error, "cannot record the job's refusal");
                    }
                    return None;
                }
            }
        }
        other => other,
    };
    if command.is_none() {
        let refusal = (JobErrorCode::Unsupported, "the job's parameters cannot be read");
        if let Err(error) = update_job_finished(pool, job.id, Err(refusal)).await {
            tracing::warn!(job = job.id, %error, "cannot record the job's refusal");
        }
    }
    command
}
