//! Transports: adapters that move the core's frames over a wire. They hold no chat logic.

pub mod ws;
