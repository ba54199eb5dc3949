//! Open-loop load for `bench/run.sh`: POSTs a JSON body at a fixed rate and reports latency the
//! way a caller sees it. Request `i` is due at `start + i / rate`; its latency runs from that due
//! time (not from when it was actually sent) to the answer, so a stalled server cannot hide its
//! stall by slowing the load down (no coordinated omission).
//!
//! The client is a plain HTTP/1.1 writer over a fixed set of keep-alive connections (a request
//! waits for a free one, and that wait counts): a general client costs too much per request to
//! drive the server on one core.
//!
//! Usage: `fixed_rate HOST:PORT PATH AGENT_KEY BODY RATE SECONDS [CONNECTIONS]`; prints
//! `achieved_rps p50_ms p99_ms max_ms failures`, then a second line about the slowest request:
//! `worst at_s ms steal0 steal1 idle0 iowait0 server load io_stalled` (see [`Sampler`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (addr, path, key, body) = (&args[1], &args[2], &args[3], &args[4]);
    let rate: f64 = args[5].parse().unwrap();
    let seconds: f64 = args[6].parse().unwrap();
    let connections: usize = args.get(7).map_or(64, |c| c.parse().unwrap());
    let total = (rate * seconds) as usize;
    assert!(total > 0, "RATE × SECONDS must be at least one request");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();

    // Pacing runs on its own thread with the OS's sleep: tokio's timer ticks in whole
    // milliseconds, which would add up to 1 ms to every latency measured from the due time.
    let start = Instant::now() + Duration::from_millis(200);
    let (due_tx, due_rx) = mpsc::unbounded_channel::<Instant>();
    let pacer_start = start.into_std();
    std::thread::spawn(move || {
        for i in 0..total {
            let due = pacer_start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
            if due_tx.send(Instant::from_std(due)).is_err() {
                return;
            }
        }
    });

    let sampler = Sampler::start(pacer_start, std::env::var("SERVER_PID").ok());

    let due_rx = Arc::new(Mutex::new(due_rx));
    let request = Arc::new(request);
    let mut workers = Vec::new();
    for _ in 0..connections {
        let mut conn = connect(addr).await;
        let (due_rx, request) = (Arc::clone(&due_rx), Arc::clone(&request));
        let addr = addr.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut buf = Vec::with_capacity(4096);
            loop {
                let Some(due) = due_rx.lock().await.recv().await else {
                    return samples;
                };
                let answer = match conn.write_all(&request).await {
                    Ok(()) => read_response(&mut conn, &mut buf).await,
                    Err(e) => Err(e),
                };
                // A failed exchange counts (as a failure, with its latency); the next request
                // goes out on a new connection.
                if answer.is_err() {
                    conn = connect(&addr).await;
                }
                samples.push((due, due.elapsed(), answer.unwrap_or(false)));
            }
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(total);
    let mut failures = 0;
    let mut worst = (start, Duration::ZERO);
    for w in workers {
        for (due, latency, ok) in w.await.unwrap() {
            failures += usize::from(!ok);
            latencies.push(latency);
            if latency > worst.1 {
                worst = (due, latency);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let samples = sampler.stop();
    latencies.sort();
    // Nearest rank: the smallest latency at or above which lies the fraction q of all samples.
    let ms = |q: f64| {
        let rank = (latencies.len() as f64 * q).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1].as_secs_f64() * 1000.0
    };
    let (due, latency) = worst;
    let from = due.saturating_duration_since(start).as_secs_f64();
    let window = Sampler::window(&samples, from, from + latency.as_secs_f64());
    // A reader that stops early (`| head -1`) ends the output, not this process with a panic.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:.0} {:.2} {:.2} {:.2} {failures}",
        latencies.len() as f64 / elapsed,
        ms(0.50),
        ms(0.99),
        ms(1.0)
    )
    .and_then(|()| {
        writeln!(
            out,
            "worst {from:.3} {:.2} {window}",
            latency.as_secs_f64() * 1000.0
        )
    });
}

/// What the machine did while the slowest request waited, to tell a stall of the server from one
/// of the machine: every 10 ms a thread reads each core's time from `/proc/stat`, the time in
/// which every runnable task waited on I/O from `/proc/pressure/io` (its `full` line) and, given
/// `SERVER_PID`, the server's CPU time and this process's own. Over the slowest request's window
/// (from its due time to its answer) it reports, as shares of that window's time: the time the
/// hypervisor took from core 0 (the server's) and core 1 (the load's) — `steal`; core 0 idle;
/// core 0 idle with a task of its waiting on a disk (`iowait`); the server's CPU; this load
/// generator's CPU; the time all work was stalled on I/O. The kernel counts CPU time in ticks of
/// 10 ms, so a window shorter than 50 ms prints `nan` for each.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Sample>>,
}

/// One reading: seconds since the load's start, then ticks: core 0 steal, core 1 steal, core 0
/// idle, core 0 iowait, the server's user + system, this process's user + system; then the
/// microseconds of full I/O stall so far.
type Sample = (f64, [u64; 7]);

impl Sampler {
    fn start(begin: std::time::Instant, server_pid: Option<String>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let now = std::time::Instant::now();
                let at = match now.checked_duration_since(begin) {
                    Some(since) => since.as_secs_f64(),
                    None => -(begin - now).as_secs_f64(),
                };
                samples.push((at, Sampler::read(server_pid.as_deref())));
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }

    fn read(server_pid: Option<&str>) -> [u64; 7] {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let core = |name: &str, field: usize| -> u64 {
            stat.lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .and_then(|l| l.split_whitespace().nth(field))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        // In /proc/<pid>/stat, utime and stime are fields 14 and 15: the 12th and 13th after the
        // `(comm)`, counted by position (the state is a letter, tpgid often -1).
        let cpu = |pid: &str| -> u64 {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
            let ticks = |n: usize| -> u64 {
                rest.split_whitespace()
                    .nth(n)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            ticks(11) + ticks(12)
        };
        let io_stalled = std::fs::read_to_string("/proc/pressure/io")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("full "))
            .and_then(|l| l.rsplit_once("total="))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        [
            core("cpu0", 8),
            core("cpu1", 8),
            core("cpu0", 4),
            core("cpu0", 5),
            server_pid.map_or(0, cpu),
            cpu("self"),
            io_stalled,
        ]
    }

    /// The shares (percent) of the window `from..to` (seconds since the start), as
    /// `steal0 steal1 idle0 iowait0 server load io_stalled`.
    fn window(samples: &[Sample], from: f64, to: f64) -> String {
        let before = samples.iter().rev().find(|s| s.0 <= from);
        let after = samples.iter().find(|s| s.0 >= to);
        let (Some(a), Some(b)) = (before, after) else {
            return "nan nan nan nan nan nan nan".into();
        };
        if to - from < 0.05 {
            return "nan nan nan nan nan nan nan".into();
        }
        let secs = b.0 - a.0;
        let ticks = secs * 100.0; // USER_HZ
        let mut shares: Vec<String> = (0..6)
            .map(|i| format!("{:.0}", 100.0 * (b.1[i] - a.1[i]) as f64 / ticks))
            .collect();
        shares.push(format!("{:.0}", (b.1[6] - a.1[6]) as f64 / secs / 1e4));
        shares.join(" ")
    }
}

async fn connect(addr: &str) -> TcpStream {
    let conn = TcpStream::connect(addr).await.unwrap();
    conn.set_nodelay(true).unwrap();
    conn
}

/// Reads one response (head, then `Content-Length` bytes of body); true for a 2xx status.
async fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(conn, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        read_more(conn, buf).await?;
    }
    Ok(head.starts_with("http/1.1 2"))
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    match conn.read(&mut chunk).await? {
        0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
        n => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}
