//! The signal that stops consumer loops: one trigger, cloned receivers, and waiting without
//! polling. The engines hand a [`Shutdown`] to each of their loops and trigger it once.

use tokio::sync::watch;

/// Tells every loop holding a clone to stop.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// Raises the shutdown signal.
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// A shutdown signal and its trigger.
pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    /// Tells every loop to stop.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    /// Completes once shutdown is triggered (or its trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }
}
