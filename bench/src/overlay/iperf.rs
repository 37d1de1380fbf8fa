//! TCP throughput with `iperf3` (Debian package): a server in one network namespace, the client
//! in another, one stream, the receiver's rate from the client's JSON report.

use std::fs::File;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::exec::{self, Result};
use crate::netns;

const PORT: u16 = 5201;

/// `iperf3 -s` in a namespace, bound to one address; killed on drop.
pub struct Server {
    child: Child,
}

impl Server {
    pub fn start(ns: &File, address: Ipv4Addr) -> Result<Server> {
        let child = netns::within(ns, || {
            Command::new("iperf3")
                .args(["-s", "-B", &address.to_string(), "-p", &PORT.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start iperf3 (Debian: iperf3): {e}"))
        })?;
        let mut server = Server { child };
        server.wait_listening()?;
        Ok(server)
    }

    /// Until its socket listens: the namespace's TCP table (as the server's `/proc/PID/net`
    /// shows it) holds port 5201 in state LISTEN (0A).
    fn wait_listening(&mut self) -> Result<()> {
        let table = format!("/proc/{}/net/tcp", self.child.id());
        let port = format!(":{PORT:04X}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&table).unwrap_or_default();
            let listening = text.lines().skip(1).any(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                fields.len() > 3 && fields[1].ends_with(&port) && fields[3] == "0A"
            });
            if listening {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("iperf3 -s exited: {status}"));
            }
            if Instant::now() > deadline {
                return Err("iperf3 -s does not listen after 10 s".to_string());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One client run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Throughput {
    /// What the receiver got, Gbit/s.
    pub gbit_s: f64,
    pub retransmits: u64,
}

/// `iperf3 -c` from the namespace `ns` to a server at `to`, for `seconds`.
pub fn client(ns: &File, to: Ipv4Addr, seconds: u32) -> Result<Throughput> {
    let out = netns::within(ns, || {
        exec::output(
            "iperf3 -c",
            Command::new("iperf3").args([
                "-c",
                &to.to_string(),
                "-p",
                &PORT.to_string(),
                "-t",
                &seconds.to_string(),
                "-J",
            ]),
        )
    })?;
    let report: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("iperf3 -J output: {e}"))?;
    if let Some(error) = report["error"].as_str() {
        return Err(format!("iperf3 -c {to}: {error}"));
    }
    let end = &report["end"];
    let bits = end["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or("iperf3 -J output lacks end.sum_received")?;
    Ok(Throughput {
        gbit_s: bits / 1e9,
        retransmits: end["sum_sent"]["retransmits"].as_u64().unwrap_or(0),
    })
}
