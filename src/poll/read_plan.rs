//! Which read is due next on a bus. Pure: time comes in as an argument, so
//! the rules are tested without a clock.
//!
//! Rules: each (device, register group) has its own period. A failed read is
//! retried after a short back-off, other devices' reads going first in the
//! meantime, so a dead device costs its neighbours one timeout per attempt and
//! never more. After the retry budget the read waits for its next period,
//! stretched exponentially (capped) while the device stays silent.

use std::time::Duration;

use tokio::time::Instant;

use crate::device::profile::RegisterGroup;
use crate::domain::ids::DeviceId;

/// Attempts per scheduled read before it counts as a failed poll.
pub(crate) const ATTEMPTS: u32 = 3;
/// Delay before a retry.
pub(crate) const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Longest wait between polls of a silent device.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Task {
    pub device: DeviceId,
    pub group: RegisterGroup,
    pub period: Duration,
    pub due: Instant,
    /// Attempts already failed for this read.
    pub failed_attempts: u32,
    /// Polls failed in a row (after all attempts), for back-off.
    pub failed_polls: u32,
}

#[derive(Debug, Default)]
pub(crate) struct ReadPlan {
    tasks: Vec<Task>,
}

impl ReadPlan {
    /// Adds a read, first due at `first_due`.
    pub(crate) fn add(&mut self, device: DeviceId, group: RegisterGroup, period: Duration, first_due: Instant) {
        self.tasks.push(Task {
            device,
            group,
            period,
            due: first_due,
            failed_attempts: 0,
            failed_polls: 0,
        });
    }

    /// When the next read falls due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.tasks.iter().map(|task| task.due).min()
    }

    /// The read to send at `now`: of those due, the highest class first
    /// (real-time values, then energy registers, then history: the priority
    /// order of `docs/ARCHITECTURE.md`, "Priority on a bus", which is the
    /// order of [`RegisterGroup`]), so a due history read never overtakes a
    /// due energy or real-time one; then the one waiting longest, then the
    /// lower device id; when none is due yet, the one due first.
    pub(crate) fn next(&self, now: Instant) -> Option<&Task> {
        let due = self
            .tasks
            .iter()
            .filter(|task| task.due <= now)
            .min_by_key(|task| (task.group, task.due, task.device));
        due.or_else(|| self.tasks.iter().min_by_key(|task| (task.due, task.group, task.device)))
    }

    fn find(&mut self, device: DeviceId, group: RegisterGroup) -> Option<&mut Task> {
        self.tasks.iter_mut().find(|t| t.device == device && t.group == group)
    }

    /// Records a successful read at `now`: next due one period after the
    /// slot it served, or one period from now if it ran late by more than a period.
    pub(crate) fn succeeded(&mut self, device: DeviceId, group: RegisterGroup, now: Instant) {
        if let Some(task) = self.find(device, group) {
            task.failed_attempts = 0;
            task.failed_polls = 0;
            let next = task.due + task.period;
            task.due = if next > now { next } else { now + task.period };
        }
    }

    /// Records a failed attempt. Returns true when the read has used its
    /// attempts (a failed poll).
    pub(crate) fn failed(&mut self, device: DeviceId, group: RegisterGroup, now: Instant) -> bool {
        let Some(task) = self.find(device, group) else {
            return false;
        };
        task.failed_attempts += 1;
        if task.failed_attempts < ATTEMPTS {
            task.due = now + RETRY_DELAY;
            return false;
        }
        task.failed_attempts = 0;
        task.failed_polls += 1;
        let stretch = 2u32.saturating_pow(task.failed_polls.saturating_sub(1).min(16));
        task.due = now + (task.period * stretch).min(MAX_BACKOFF.max(task.period));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: DeviceId = DeviceId(1);
    const B: DeviceId = DeviceId(2);

    #[tokio::test(start_paused = true)]
    async fn periods_are_kept_without_drift() {
        let start = Instant::now();
        let mut schedule = ReadPlan::default();
        schedule.add(A, RegisterGroup::Realtime, Duration::from_secs(10), start);
        // Served 300 ms late: next slot stays on the 10 s grid.
        schedule.succeeded(A, RegisterGroup::Realtime, start + Duration::from_millis(300));
        assert_eq!(schedule.next_due(), Some(start + Duration::from_secs(10)));
        // Served 25 s late: do not fire a burst of missed slots.
        schedule.succeeded(A, RegisterGroup::Realtime, start + Duration::from_secs(35));
        assert_eq!(schedule.next_due(), Some(start + Duration::from_secs(45)));
    }

    #[tokio::test(start_paused = true)]
    async fn realtime_goes_first_on_a_tie() {
        let start = Instant::now();
        let mut schedule = ReadPlan::default();
        schedule.add(A, RegisterGroup::Energy, Duration::from_secs(60), start);
        schedule.add(B, RegisterGroup::Realtime, Duration::from_secs(10), start);
        let next = schedule.next(start).unwrap();
        assert_eq!((next.device, next.group), (B, RegisterGroup::Realtime));
    }

    #[tokio::test(start_paused = true)]
    async fn overdue_realtime_reads_overtake_older_energy_reads() {
        let start = Instant::now();
        let mut schedule = ReadPlan::default();
        schedule.add(A, RegisterGroup::Energy, Duration::from_secs(60), start);
        schedule.add(
            B,
            RegisterGroup::Realtime,
            Duration::from_secs(10),
            start + Duration::from_secs(2),
        );
        // Both overdue at 3 s: the real-time read goes first although due later.
        let next = schedule.next(start + Duration::from_secs(3)).unwrap();
        assert_eq!((next.device, next.group), (B, RegisterGroup::Realtime));
        // At 1 s only the energy read is due.
        assert_eq!(schedule.next(start + Duration::from_secs(1)).unwrap().device, A);
        assert_eq!(schedule.next_due(), Some(start));
    }

    #[tokio::test(start_paused = true)]
    async fn due_reads_go_realtime_then_energy_then_history() {
        const C: DeviceId = DeviceId(3);
        let start = Instant::now();
        let mut schedule = ReadPlan::default();
        // The history read has waited longest and is on the lowest device id,
        // the real-time read has waited least: only the class decides.
        schedule.add(A, RegisterGroup::History, Duration::from_secs(900), start);
        schedule.add(
            B,
            RegisterGroup::Energy,
            Duration::from_secs(60),
            start + Duration::from_secs(1),
        );
        schedule.add(
            C,
            RegisterGroup::Realtime,
            Duration::from_secs(10),
            start + Duration::from_secs(2),
        );
        let now = start + Duration::from_secs(3);
        let mut served = Vec::new();
        for _ in 0..3 {
            let next = schedule.next(now).unwrap();
            let (device, group) = (next.device, next.group);
            served.push(group);
            schedule.succeeded(device, group, now);
        }
        assert_eq!(
            served,
            [RegisterGroup::Realtime, RegisterGroup::Energy, RegisterGroup::History]
        );
        // With the energy read alone due, the history read still waits.
        let mut schedule = ReadPlan::default();
        schedule.add(A, RegisterGroup::History, Duration::from_secs(900), start);
        schedule.add(
            A,
            RegisterGroup::Energy,
            Duration::from_secs(60),
            start + Duration::from_secs(5),
        );
        let next = schedule.next(start + Duration::from_secs(5)).unwrap();
        assert_eq!(next.group, RegisterGroup::Energy);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_read_retries_then_backs_off() {
        let start = Instant::now();
        let period = Duration::from_secs(10);
        let mut schedule = ReadPlan::default();
        schedule.add(A, RegisterGroup::Realtime, period, start);
        schedule.add(B, RegisterGroup::Realtime, period, start + Duration::from_millis(100));
        // First failure: retry after RETRY_DELAY, and B (due earlier) goes first.
        assert!(!schedule.failed(A, RegisterGroup::Realtime, start + Duration::from_secs(1)));
        assert_eq!(schedule.next(start + Duration::from_secs(1)).unwrap().device, B);
        assert!(!schedule.failed(A, RegisterGroup::Realtime, start + Duration::from_secs(2)));
        let now = start + Duration::from_secs(3);
        assert!(
            schedule.failed(A, RegisterGroup::Realtime, now),
            "third attempt ends the poll"
        );
        let due = |s: &ReadPlan| s.tasks.iter().find(|t| t.device == A).unwrap().due;
        assert_eq!(due(&schedule), now + period);
        // Second failed poll in a row: twice the period; then four times, capped.
        for _ in 0..ATTEMPTS {
            schedule.failed(A, RegisterGroup::Realtime, now);
        }
        assert_eq!(due(&schedule), now + period * 2);
        for _ in 0..ATTEMPTS * 10 {
            schedule.failed(A, RegisterGroup::Realtime, now);
        }
        assert_eq!(due(&schedule), now + MAX_BACKOFF);
        // One success, when it falls due, restores the normal period.
        let at = due(&schedule);
        schedule.succeeded(A, RegisterGroup::Realtime, at);
        assert_eq!(due(&schedule), at + period);
    }
}
