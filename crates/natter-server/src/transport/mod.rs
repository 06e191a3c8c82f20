//! Transports: adapters that move the core's frames over a wire. They hold no chat logic.
//! [`ws`] is the native `/ws` WebSocket protocol (on our own RFC 6455 codec, [`wsframe`]);
//! [`socketio`] maps the same requests and events onto Socket.IO v4 at `/socket.io/`.

pub mod socketio;
pub mod ws;
pub mod wsframe;
