//! `GET /v1/changes`: the change stream as Server-Sent Events, for front ends
//! that follow a hookwatch over HTTP (`control::RemoteControl`).
//!
//! Each notification is one event with a per-connection sequence number as
//! its `id`: `event: change` with the [`Change`](crate::engine::Change) as
//! JSON `data`, or `event: resync` when this follower fell behind and lost
//! changes (it must read again). A slow follower never slows the engine: the
//! engine's broadcast channel drops for laggards (which is what becomes a
//! `resync`), and whatever is ready is written together, since hyper buffers
//! the frames a stream yields without waiting and writes them in one go. The
//! stream ends when the server's shutdown token is cancelled, so a graceful
//! shutdown never waits on an open follower.

use super::ApiState;
use crate::control::Notification;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{stream, Stream, StreamExt};
use std::time::Duration;

/// How often an idle stream sends a comment, so proxies and the client's
/// read timeout know the connection is alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The SSE event name of a change, and of a "read again".
pub const CHANGE_EVENT: &str = "change";
pub const RESYNC_EVENT: &str = "resync";

pub(super) async fn follow_changes(
    State(state): State<ApiState>,
) -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
    let notifications = state.control.subscribe();
    let events = notifications.enumerate().map(|(index, notification)| {
        let sequence = (index as u64 + 1).to_string();
        match notification {
            Notification::Changed(change) => Event::default()
                .event(CHANGE_EVENT)
                .id(sequence)
                .json_data(change),
            Notification::Resync => {
                Ok(Event::default().event(RESYNC_EVENT).id(sequence).data("{}"))
            }
        }
    });
    // A first comment puts the response on the wire at once, so a follower
    // knows it is subscribed before any change happens.
    let opening = stream::once(async { Ok(Event::default().comment("following changes")) });
    let stream = opening
        .chain(events)
        .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
