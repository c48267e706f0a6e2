//! Which read is due next on a bus. Pure: time comes in as an argument, so
//! the rules are tested without a clock.
//!
//! Rules: each piece of work (a device's register group, or its load
//! profile) has its own period. A failed read is
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

/// What a scheduled read reads, in the order of priority when several are
/// due: a device's register groups (real-time values, energy registers,
/// history registers), then the meter's load profile (`docs/ARCHITECTURE.md`,
/// "Priority on a bus"). The derived order is that priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Work {
    /// One of the device's register groups.
    Read(RegisterGroup),
    /// The next stretch of the meter's own load profile.
    LoadProfile,
}

impl std::fmt::Display for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Work::Read(group) => group.fmt(f),
            Work::LoadProfile => f.write_str("load_profile"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Task {
    pub device: DeviceId,
    pub work: Work,
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
    pub(crate) fn add(&mut self, device: DeviceId, work: Work, period: Duration, first_due: Instant) {
        self.tasks.push(Task {
            device,
            work,
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
    /// (real-time values, then energy registers, then history registers,
    /// then load profiles: the order of [`Work`]), so a due history or
    /// load-profile read never overtakes a due energy or real-time one, a
    /// neighbour's included; then the one waiting longest, then the lower
    /// device id; when none is due yet, the one due first.
    pub(crate) fn next(&self, now: Instant) -> Option<&Task> {
        let due = self
            .tasks
            .iter()
            .filter(|task| task.due <= now)
            .min_by_key(|task| (task.work, task.due, task.device));
        due.or_else(|| self.tasks.iter().min_by_key(|task| (task.due, task.work, task.device)))
    }

    /// What is due at `now`, in no particular order.
    pub(crate) fn due(&self, now: Instant) -> impl Iterator<Item = (DeviceId, Work)> + '_ {
        self.tasks
            .iter()
            .filter(move |task| task.due <= now)
            .map(|task| (task.device, task.work))
    }

    /// When `work` of `device` is due, if it is planned.
    pub(crate) fn due_of(&self, device: DeviceId, work: Work) -> Option<Instant> {
        self.tasks
            .iter()
            .find(|t| t.device == device && t.work == work)
            .map(|t| t.due)
    }

    fn find(&mut self, device: DeviceId, work: Work) -> Option<&mut Task> {
        self.tasks.iter_mut().find(|t| t.device == device && t.work == work)
    }

    /// Makes `work` of `device` due at `due`, whatever its period: more of a
    /// load profile to catch up on is due at once (behind any other due
    /// read), and a load profile waits for its device's next readout.
    pub(crate) fn due_at(&mut self, device: DeviceId, work: Work, due: Instant) {
        if let Some(task) = self.find(device, work) {
            task.due = due;
        }
    }

    /// Records a successful read at `now`: next due one period after the
    /// slot it served, or one period from now if it ran late by more than a period.
    pub(crate) fn succeeded(&mut self, device: DeviceId, work: Work, now: Instant) {
        if let Some(task) = self.find(device, work) {
            task.failed_attempts = 0;
            task.failed_polls = 0;
            let next = task.due + task.period;
            task.due = if next > now { next } else { now + task.period };
        }
    }

    /// Holds `device`'s other register reads until `work`'s next attempt:
    /// a device that did not answer (a silent or garbled line, not a
    /// refusal) is asked again by that one read, not by each of its
    /// groups in turn, so a dead device costs its neighbours one timeout
    /// per attempt, whatever the number of its groups. Once the read
    /// succeeds, the held reads fall due at once.
    pub(crate) fn hold_device(&mut self, device: DeviceId, work: Work) {
        let Some(until) = self.due_of(device, work) else {
            return;
        };
        for task in &mut self.tasks {
            if task.device == device && task.work != work && matches!(task.work, Work::Read(_)) {
                task.due = task.due.max(until);
            }
        }
    }

    /// Records a failed attempt. Returns true when the read has used its
    /// attempts (a failed poll).
    pub(crate) fn failed(&mut self, device: DeviceId, work: Work, now: Instant) -> bool {
        let Some(task) = self.find(device, work) else {
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
        schedule.add(A, Work::Read(RegisterGroup::Realtime), Duration::from_secs(10), start);
        // Served 300 ms late: next slot stays on the 10 s grid.
        schedule.succeeded(
            A,
            Work::Read(RegisterGroup::Realtime),
            start + Duration::from_millis(300),
        );
        assert_eq!(schedule.next_due(), Some(start + Duration::from_secs(10)));
        // Served 25 s late: do not fire a burst of missed slots.
        schedule.succeeded(A, Work::Read(RegisterGroup::Realtime), start + Duration::from_secs(35));
        assert_eq!(schedule.next_due(), Some(start + Duration::from_secs(45)));
    }

    #[tokio::test(start_paused = true)]
    async fn realtime_goes_first_on_a_tie() {
        let start = Instant::now();
        let mut schedule = ReadPlan::default();
        schedule.add(A, Work::Read(RegisterGroup::Energy), Duration::from_secs(60), start);
        schedule.add(B, Work::Read(RegisterGroup::Realtime), Duration::from_secs(10), start);
        let next = schedule.next(start).unwrap();
        assert_eq!((next.device, next.work), (B, Work::Read(RegisterGroup::Realtime)));
    }

    #[tokio::test(start_paused = true)]
    async fn overdue_realtime_reads_overtake_older_energy_reads() {
        let start = Instant::now();
        let mut schedule = ReadPlan::default();
        schedule.add(A, Work::Read(RegisterGroup::Energy), Duration::from_secs(60), start);
        schedule.add(
            B,
            Work::Read(RegisterGroup::Realtime),
            Duration::from_secs(10),
            start + Duration::from_secs(2),
        );
        // Both overdue at 3 s: the real-time read goes first although due later.
        let next = schedule.next(start + Duration::from_secs(3)).unwrap();
        assert_eq!((next.device, next.work), (B, Work::Read(RegisterGroup::Realtime)));
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
        schedule.add(A, Work::Read(RegisterGroup::History), Duration::from_secs(900), start);
        schedule.add(
            B,
            Work::Read(RegisterGroup::Energy),
            Duration::from_secs(60),
            start + Duration::from_secs(1),
        );
        schedule.add(
            C,
            Work::Read(RegisterGroup::Realtime),
            Duration::from_secs(10),
            start + Duration::from_secs(2),
        );
        let now = start + Duration::from_secs(3);
        let mut served = Vec::new();
        for _ in 0..3 {
            let next = schedule.next(now).unwrap();
            let (device, work) = (next.device, next.work);
            served.push(work);
            schedule.succeeded(device, work, now);
        }
        assert_eq!(
            served,
            [
                Work::Read(RegisterGroup::Realtime),
                Work::Read(RegisterGroup::Energy),
                Work::Read(RegisterGroup::History)
            ]
        );
        // With the energy read alone due, the history read still waits.
        let mut schedule = ReadPlan::default();
        schedule.add(A, Work::Read(RegisterGroup::History), Duration::from_secs(900), start);
        schedule.add(
            A,
            Work::Read(RegisterGroup::Energy),
            Duration::from_secs(60),
            start + Duration::from_secs(5),
        );
        let next = schedule.next(start + Duration::from_secs(5)).unwrap();
        assert_eq!(next.work, Work::Read(RegisterGroup::Energy));
    }

    #[tokio::test(start_paused = true)]
    async fn a_load_profile_catching_up_waits_behind_every_due_register_read() {
        let start = Instant::now();
        let mut schedule = ReadPlan::default();
        let energy = Work::Read(RegisterGroup::Energy);
        let history = Work::Read(RegisterGroup::History);
        // A's load profile has waited since the start; B's registers fall due later.
        schedule.add(A, Work::LoadProfile, Duration::from_secs(900), start);
        schedule.add(B, energy, Duration::from_secs(1), start + Duration::from_secs(2));
        schedule.add(B, history, Duration::from_secs(900), start + Duration::from_secs(2));
        // Alone due, the load profile goes.
        assert_eq!(schedule.next(start).unwrap().work, Work::LoadProfile);
        // Still catching up, it is due again at once ...
        schedule.due_at(A, Work::LoadProfile, start + Duration::from_secs(1));
        assert_eq!(
            schedule.due_of(A, Work::LoadProfile),
            Some(start + Duration::from_secs(1))
        );
        // ... but once B's reads are due, they go first, history registers included.
        let now = start + Duration::from_secs(3);
        let first = schedule.next(now).unwrap();
        assert_eq!((first.device, first.work), (B, energy));
        schedule.succeeded(B, energy, now);
        let second = schedule.next(now).unwrap();
        assert_eq!((second.device, second.work), (B, history));
        schedule.succeeded(B, history, now);
        assert_eq!(schedule.next(now).unwrap().work, Work::LoadProfile);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_devices_other_reads_wait_for_its_retry() {
        let start = Instant::now();
        let realtime = Work::Read(RegisterGroup::Realtime);
        let energy = Work::Read(RegisterGroup::Energy);
        let mut schedule = ReadPlan::default();
        schedule.add(A, realtime, Duration::from_secs(10), start);
        schedule.add(A, energy, Duration::from_secs(10), start);
        schedule.add(A, Work::LoadProfile, Duration::from_secs(900), start);
        schedule.add(B, energy, Duration::from_secs(10), start);
        // A's real-time read gets no answer: its energy read waits for the
        // retry 500 ms later; B's read and A's load profile do not.
        assert!(!schedule.failed(A, realtime, start));
        schedule.hold_device(A, realtime);
        let retry = start + RETRY_DELAY;
        assert_eq!(schedule.due_of(A, energy), Some(retry));
        assert_eq!(schedule.due_of(B, energy), Some(start));
        assert_eq!(schedule.due_of(A, Work::LoadProfile), Some(start));
        // Three failed attempts: A's reads all wait one period (10 s).
        let third = retry + RETRY_DELAY;
        assert!(!schedule.failed(A, realtime, retry));
        assert!(schedule.failed(A, realtime, third));
        schedule.hold_device(A, realtime);
        assert_eq!(schedule.due_of(A, energy), Some(third + Duration::from_secs(10)));
        // At the retry, the real-time read goes before the held energy read.
        let next = schedule.next(third + Duration::from_secs(10)).unwrap();
        assert_eq!((next.device, next.work), (A, realtime));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_read_retries_then_backs_off() {
        let start = Instant::now();
        let period = Duration::from_secs(10);
        let mut schedule = ReadPlan::default();
        schedule.add(A, Work::Read(RegisterGroup::Realtime), period, start);
        schedule.add(
            B,
            Work::Read(RegisterGroup::Realtime),
            period,
            start + Duration::from_millis(100),
        );
        // First failure: retry after RETRY_DELAY, and B (due earlier) goes first.
        assert!(!schedule.failed(A, Work::Read(RegisterGroup::Realtime), start + Duration::from_secs(1)));
        assert_eq!(schedule.next(start + Duration::from_secs(1)).unwrap().device, B);
        assert!(!schedule.failed(A, Work::Read(RegisterGroup::Realtime), start + Duration::from_secs(2)));
        let now = start + Duration::from_secs(3);
        assert!(
            schedule.failed(A, Work::Read(RegisterGroup::Realtime), now),
            "third attempt ends the poll"
        );
        let due = |s: &ReadPlan| s.tasks.iter().find(|t| t.device == A).unwrap().due;
        assert_eq!(due(&schedule), now + period);
        // Second failed poll in a row: twice the period; then four times, capped.
        for _ in 0..ATTEMPTS {
            schedule.failed(A, Work::Read(RegisterGroup::Realtime), now);
        }
        assert_eq!(due(&schedule), now + period * 2);
        for _ in 0..ATTEMPTS * 10 {
            schedule.failed(A, Work::Read(RegisterGroup::Realtime), now);
        }
        assert_eq!(due(&schedule), now + MAX_BACKOFF);
        // One success, when it falls due, restores the normal period.
        let at = due(&schedule);
        schedule.succeeded(A, Work::Read(RegisterGroup::Realtime), at);
        assert_eq!(due(&schedule), at + period);
    }
}
