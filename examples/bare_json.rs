//! The baseline for `bench/run.sh`: a bare actix-web handler that parses a small JSON body and
//! answers a small JSON envelope, with the same actix-web build and worker count as agent-otp.
//!
//! Usage: `bare_json 127.0.0.1:18080`

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

async fn handle(body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Created().json(json!({ "success": true, "data": { "echo": body.into_inner() } }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".to_owned());
    HttpServer::new(|| App::new().route("/", web::post().to(handle)))
        .bind(addr)?
        .run()
        .await
}
