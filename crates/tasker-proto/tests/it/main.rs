//! tasker-proto's checks that need the generated artifacts as a whole.

mod wire;
