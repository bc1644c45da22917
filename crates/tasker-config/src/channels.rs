//! Channel buffer sections shared by the orchestration and worker `mpsc_channels` tables.

use crate::schema::{range, section};

section! {
    /// The command processor's channel.
    pub struct CommandProcessorChannels => RawCommandProcessorChannels {
        /// Capacity of the command channel.
        command_buffer_size: u32 = 5000, range(10, 1_000_000);
    }
}

section! {
    /// The event system's channel.
    pub struct EventSystemChannels => RawEventSystemChannels {
        /// Capacity of the event channel.
        event_channel_buffer_size: u32 = 10_000, range(10, 1_000_000);
    }
}

section! {
    /// The PostgreSQL notification listener's channel.
    pub struct EventListenerChannels => RawEventListenerChannels {
        /// Capacity of the notification channel.
        pgmq_event_buffer_size: u32 = 50_000, range(10, 1_000_000);
    }
}
