//! tenant-sim as a child process, and its control routes (`/_sim/*`) over a minimal HTTP/1.1
//! client on loopback (no HTTP library, so the bench links nothing the tools' numbers depend on).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Sim {
    child: Child,
    pub url: String,
    pub tenant_id: String,
    pub dynamics_url: String,
    pub client_id: String,
    pub client_secret: String,
    addr: String,
}

impl Sim {
    /// Starts `tenant-sim --port 0` with `extra` flags and reads its one JSON line.
    pub fn start(bin: &Path, extra: &[String], log: &Path) -> Result<Sim, String> {
        let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new(bin)
            .args(["--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let out = child.stdout.take().ok_or("tenant-sim has no stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| format!("reading tenant-sim's first line: {e}"))?;
        let v: Value = match serde_json::from_str(line.trim()) {
            Ok(v) => v,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log_text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!(
                    "tenant-sim did not print its JSON line ({e}): {line:?} {log_text}"
                ));
            }
        };
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let url = s("/url");
        let addr = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("tenant-sim url {url:?} is not http://"))?
            .trim_end_matches('/')
            .to_string();
        if !(addr.starts_with("127.") || addr.starts_with("[::1]") || addr.starts_with("localhost"))
        {
            let _ = child.kill();
            return Err(format!("tenant-sim is not on loopback: {url}"));
        }
        Ok(Sim {
            child,
            tenant_id: s("/tenant_id"),
            dynamics_url: s("/dynamics_url"),
            client_id: s("/admin/client_id"),
            client_secret: s("/admin/client_secret"),
            url,
            addr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn reset(&self) -> Result<(), String> {
        self.call("POST", "/_sim/reset").map(|_| ())
    }

    pub fn clear_requests(&self) -> Result<(), String> {
        self.call("DELETE", "/_sim/requests").map(|_| ())
    }

    /// The request log: method, path, status, service (login|graph|dataverse), user_agent.
    pub fn requests(&self) -> Result<Vec<Value>, String> {
        let body = self.call("GET", "/_sim/requests")?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(a)) => Ok(a),
            Ok(other) => Err(format!("/_sim/requests is not an array: {other}")),
            Err(e) => Err(format!("/_sim/requests is not JSON: {e}")),
        }
    }

    fn call(&self, method: &str, path: &str) -> Result<Vec<u8>, String> {
        http(&self.addr, method, path).map_err(|e| format!("{method} {path}: {e}"))
    }

    pub fn stop(mut self) {
        // SIGTERM first: tenant-sim shuts down cleanly on it.
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; answers the body of a 2xx.
fn http(addr: &str, method: &str, path: &str) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\nUser-Agent: marketo-s2s-bench\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = &raw[split + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    if !(200..300).contains(&status) {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body)
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk header")?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_bodies() {
        let body = b"4\r\n[1,2\r\n2\r\n,3\r\n1\r\n]\r\n0\r\n\r\n";
        assert_eq!(super::dechunk(body).as_deref(), Ok(&b"[1,2,3]"[..]));
        assert!(super::dechunk(b"zz\r\n").is_err());
    }
}
