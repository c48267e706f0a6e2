//! The one way to stop long-running work: the server, the bus workers, the
//! derivation and the simulators all take a [`Shutdown`], and stop when its
//! [`Trigger`] is fired or dropped.
//!
//! Dropping means stop, so a task whose owner is gone (a test that returned,
//! a bus removed from the configuration, a process unwinding) never runs
//! on unnoticed. The channel carries no value: a watch channel of `()`
//! whose only event is that its sender has gone.

use tokio::sync::watch;

/// Creates a trigger and the shutdown it fires.
pub fn channel() -> (Trigger, Shutdown) {
    let (sender, receiver) = watch::channel(());
    (Trigger { _sender: sender }, Shutdown { receiver })
}

/// The owner's side: stops every [`Shutdown`] made from it when fired or
/// dropped.
#[derive(Debug)]
pub struct Trigger {
    _sender: watch::Sender<()>,
}

impl Trigger {
    /// Stops now; the same as dropping the trigger, said where it is meant.
    pub fn fire(self) {
        drop(self);
    }
}

/// The worker's side: cheap to clone, each clone sees the same trigger.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<()>,
}

impl Shutdown {
    /// Returns once the trigger has been fired or dropped (at once if it
    /// already has). Safe to call again and to drop mid-wait, so it fits a
    /// `tokio::select!` branch inside a loop.
    pub async fn wait(&self) {
        let mut receiver = self.receiver.clone();
        // Nothing is ever sent: `changed` ends only when the sender is gone.
        while receiver.changed().await.is_ok() {}
    }

    /// Whether the trigger has been fired or dropped.
    pub fn is_shutdown(&self) -> bool {
        self.receiver.has_changed().is_err()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_while_the_trigger_lives() {
        let (trigger, shutdown) = channel();
        let waited = tokio::time::timeout(Duration::from_secs(3600), shutdown.wait()).await;
        assert!(waited.is_err(), "wait returned with its trigger alive");
        assert!(!shutdown.is_shutdown());
        drop(trigger);
    }

    #[tokio::test]
    async fn firing_stops_every_clone() {
        let (trigger, shutdown) = channel();
        let clone = shutdown.clone();
        let waiting = tokio::spawn(async move { clone.wait().await });
        trigger.fire();
        waiting.await.unwrap();
        assert!(shutdown.is_shutdown());
        // A later wait returns at once.
        shutdown.wait().await;
    }

    #[tokio::test]
    async fn dropping_the_trigger_stops() {
        let (trigger, shutdown) = channel();
        drop(trigger);
        assert!(shutdown.is_shutdown());
        shutdown.wait().await;
    }
}
