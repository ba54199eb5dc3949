//! A sequential load for instruction-count profiles (`bench/callgrind.sh`): sends `count` JSON
//! POSTs one after another over one keep-alive connection and checks each answer is a 2xx. With
//! one request in flight at a time the server's work per request is the same in every run, so the
//! difference between two runs' instruction counts divided by the difference in requests is the
//! cost of one request, whatever else the machine is doing.
//!
//! Usage: `seq_post 127.0.0.1:18787 /api/v1/permissions/request KEY '{"action":"bench.auto"}' 1000`
//! (an empty KEY sends no `Authorization` header).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, key, body, count] = args.as_slice() else {
        eprintln!("usage: seq_post ADDR PATH KEY BODY COUNT");
        return ExitCode::from(2);
    };
    let Ok(count) = count.parse::<u64>() else {
        eprintln!("seq_post: COUNT must be a number");
        return ExitCode::from(2);
    };
    match run(addr, path, key, body, count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seq_post: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: &str, path: &str, key: &str, body: &str, count: u64) -> Result<(), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let auth = if key.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {key}\r\n")
    };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut line = String::new();
    for i in 0..count {
        writer
            .write_all(request.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        let status = line.split(' ').nth(1).unwrap_or("");
        if !status.starts_with('2') {
            return Err(format!("request {i}: {}", line.trim_end()));
        }
        let mut length = 0usize;
        loop {
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(|_| "bad content-length")?;
            }
        }
        let mut answer = vec![0; length];
        reader
            .read_exact(&mut answer)
            .map_err(|e| format!("read body: {e}"))?;
    }
    Ok(())
}
