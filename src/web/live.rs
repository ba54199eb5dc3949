//! Server-sent events for the pages that stay current (`GET /live`): one line per request that
//! changed (`{"id":…,"status":…}`, no secrets), fed by the [`Hub`](crate::changes::Hub) after each
//! commit. `static/live.js` reloads the changed part of the page in place; without JavaScript the
//! pages still work (the pending list refreshes itself, the request page says when it expires).
//!
//! A stream lasts at most [`STREAM_SECS`] and the browser reconnects by itself (`retry:`), so a
//! server stopping never waits long for an open stream, and a dead connection is found by the
//! comment line sent every [`PING_SECS`] (a server stopping waits for open streams until a write
//! to a closed one fails, so this is short).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use tokio::sync::mpsc;

use super::auth::Human;
use crate::service::Service;

/// Longest life of one stream, in seconds (the browser then reconnects).
pub(super) const STREAM_SECS: u64 = 50;
/// How often an idle stream says it is still there, in seconds.
const PING_SECS: u64 = 1;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/live").route(web::get().to(live)));
}

/// The body of an event stream: what the feeding task sends, until it stops or the client goes.
struct Events(mpsc::Receiver<Bytes>);

impl MessageBody for Events {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(Ok))
    }
}

async fn live(svc: web::Data<Service>, _human: Human) -> HttpResponse {
    // Subscribed before the response starts: nothing committed after the page was read is missed
    // by a script that connects right after loading.
    let mut changes = svc.subscribe();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let stop = tokio::time::sleep(Duration::from_secs(STREAM_SECS));
        tokio::pin!(stop);
        let mut ping = tokio::time::interval(Duration::from_secs(PING_SECS));
        if tx
            .send(Bytes::from_static(b"retry: 1000\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let line = tokio::select! {
                _ = &mut stop => return,
                _ = ping.tick() => Bytes::from_static(b": ping\n\n"),
                change = changes.next() => match change {
                    Some(c) => Bytes::from(format!(
                        "data: {}\n\n",
                        serde_json::json!({"id": c.id.as_str(), "status": c.status.as_str()})
                    )),
                    // Changes were missed: the page re-reads everything it shows.
                    None => Bytes::from_static(b"data: {\"id\":\"*\"}\n\n"),
                },
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .body(Events(rx))
}
