//! `agent-otp mcp` spoken to over stdio with JSON-RPC 2.0, as an MCP host does: initialize,
//! tools/list, tools/call against a live server.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::client::pending_id;
use crate::support::{TestServer, agent_otp_command};

struct Mcp {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl Mcp {
    /// Starts `agent-otp mcp` for agent `key` and completes the MCP handshake.
    async fn start(url: &str, key: &str, max_wait: u64) -> (Mcp, Value) {
        let mut child = Command::from(agent_otp_command())
            .args(["mcp", "--max-wait", &max_wait.to_string()])
            .env("AGENT_OTP_URL", url)
            .env("AGENT_OTP_KEY", key)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut mcp = Mcp {
            _child: child,
            stdin,
            stdout,
            next_id: 0,
        };
        let init = mcp
            .call(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "it", "version": "0"},
                }),
            )
            .await;
        mcp.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        (mcp, init)
    }

    async fn send(&mut self, msg: Value) {
        let line = format!("{msg}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// One request; returns its `result` (panics on a JSON-RPC error).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line())
                .await
                .expect("an answer within 30 s")
                .unwrap()
                .expect("the server is still running");
            let msg: Value = serde_json::from_str(&line).unwrap();
            if msg["id"] == id {
                assert!(msg.get("error").is_none(), "{msg}");
                return msg["result"].clone();
            }
        }
    }

    /// Calls a tool; returns `(isError, structured answer)`.
    async fn tool(&mut self, name: &str, args: Value) -> (bool, Value) {
        let r = self
            .call("tools/call", json!({"name": name, "arguments": args}))
            .await;
        let text = r["content"][0]["text"].as_str().unwrap();
        let from_text: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            from_text, r["structuredContent"],
            "text mirrors the structure"
        );
        (r["isError"] == true, from_text)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_tools_cover_auto_human_and_denied_paths() {
    let s = TestServer::start().await;
    let key = s.agent("claude").await;
    let (mut mcp, init) = Mcp::start(&s.url(""), &key, 1).await;
    assert_eq!(init["serverInfo"]["name"], "agent-otp");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");

    let tools = mcp.call("tools/list", json!({})).await;
    let mut names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["get_permission", "request_permission", "use_permission"]
    );
    let request_tool = &tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "request_permission")
        .unwrap();
    assert_eq!(request_tool["inputSchema"]["required"], json!(["action"]));

    // Auto-approved: token at once, then one use.
    let (err, a) = mcp
        .tool("request_permission", json!({"action": "file.read"}))
        .await;
    assert!(!err, "{a}");
    assert_eq!(a["status"], "approved");
    assert!(a["next"].as_str().unwrap().contains("use_permission"));
    let (err, u) = mcp
        .tool(
            "use_permission",
            json!({"id": a["id"], "token": a["token"]}),
        )
        .await;
    assert!(!err && u["success"] == true, "{u}");
    let (err, u) = mcp
        .tool(
            "use_permission",
            json!({"id": a["id"], "token": a["token"]}),
        )
        .await;
    assert!(err && u["code"] == "TOKEN_USED", "{u}");

    // Needs a human: the call returns within the bound, saying what to do next.
    let started = Instant::now();
    let (err, p) = mcp
        .tool(
            "request_permission",
            json!({"action": "gmail.send", "context": {"reason": "invoice"}}),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!err, "{p}");
    assert_eq!(p["status"], "pending");
    assert!(p["next"].as_str().unwrap().contains("get_permission"));
    assert!(p["approvalUrl"].as_str().unwrap().contains("/requests/"));
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(pending_id(&s).await, id);
    s.approve(&id).await;
    let (err, g) = mcp.tool("get_permission", json!({"id": id})).await;
    assert!(!err, "{g}");
    assert_eq!(g["status"], "approved");
    let token = g["token"].as_str().unwrap();
    let (err, u) = mcp
        .tool(
            "use_permission",
            json!({"id": id, "token": token, "action_details": {"to": "a@b.c"}}),
        )
        .await;
    assert!(!err && u["success"] == true, "{u}");

    // Denied by policy.
    let (err, d) = mcp
        .tool("request_permission", json!({"action": "shell.exec"}))
        .await;
    assert!(!err);
    assert_eq!(d["status"], "denied");
    assert!(d["next"].as_str().unwrap().contains("Do not"));

    // Bad input comes back as a tool error naming the field.
    let (err, v) = mcp
        .tool("request_permission", json!({"action": "x", "ttl": 1}))
        .await;
    assert!(err);
    assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_reports_a_bad_key_as_a_tool_error() {
    let s = TestServer::start().await;
    let (mut mcp, _) = Mcp::start(&s.url(""), "ak_wrong", 1).await;
    let (err, v) = mcp
        .tool("request_permission", json!({"action": "file.read"}))
        .await;
    assert!(err);
    assert_eq!(v["error"]["code"], "UNAUTHORIZED");
    s.stop().await;
}
