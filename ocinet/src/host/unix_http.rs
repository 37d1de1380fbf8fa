//! One HTTP/1.0 GET over a unix socket, within a time limit: how ocinet asks a local daemon's
//! API (dockerd's) a question without an HTTP library. HTTP/1.0, so the answer ends where the
//! connection does: no chunked encoding to decode, no connection kept.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A daemon's answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// GETs `path` (checked by the caller: no spaces, no line breaks) from the server on `socket`.
/// The whole exchange takes at most `limit`; an answer longer than `max_bytes` is an error.
/// Nobody listening is `NotFound` or `ConnectionRefused`, as from `connect`.
pub(crate) fn get(
    socket: &Path,
    path: &str,
    limit: Duration,
    max_bytes: usize,
) -> io::Result<Response> {
    let deadline = Instant::now() + limit;
    let mut stream = UnixStream::connect(socket)?;
    stream.set_write_timeout(Some(limit))?;
    // In one write: a server may read the head once.
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("no whole answer within {limit:?}"),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    format!("no whole answer within {limit:?}"),
                ))
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        if answer.len() + n > max_bytes {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("the answer is longer than {max_bytes} bytes"),
            ));
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    parse(answer)
}

/// The status line's code and what follows the head.
fn parse(mut answer: Vec<u8>) -> io::Result<Response> {
    let invalid = |what: &str| io::Error::new(ErrorKind::InvalidData, what.to_string());
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("the answer has no complete HTTP head"))?;
    let status = std::str::from_utf8(&answer[..head_end])
        .ok()
        .and_then(|head| head.lines().next())
        .filter(|line| line.starts_with("HTTP/1."))
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid("the answer does not start with an HTTP status line"))?;
    let body = answer.split_off(head_end + 4);
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn serve_once(name: &str, reply: &'static [u8], pause: Duration) -> std::path::PathBuf {
        let socket = std::env::temp_dir().join(format!(
            "ocinet-unix-http-{name}-{}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 512];
            let n = conn.read(&mut request).unwrap();
            assert!(request[..n].starts_with(b"GET /networks/abc HTTP/1.0\r\n"));
            std::thread::sleep(pause);
            let _ = conn.write_all(reply);
        });
        socket
    }

    #[test]
    fn reads_the_status_and_the_body_up_to_the_close() {
        let socket = serve_once(
            "ok",
            b"HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"message\":\"no\"}\n",
            Duration::ZERO,
        );
        let got = get(&socket, "/networks/abc", Duration::from_secs(5), 1024).unwrap();
        assert_eq!(got.status, 404);
        assert_eq!(got.body, b"{\"message\":\"no\"}\n");
        let _ = std::fs::remove_file(&socket);
    }

    #[test]
    fn a_slow_long_or_garbled_answer_is_an_error_and_nobody_listening_is_not_found() {
        let slow = serve_once("slow", b"HTTP/1.0 200 OK\r\n\r\n{}", Duration::from_secs(2));
        let e = get(&slow, "/networks/abc", Duration::from_millis(200), 1024).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        let long = serve_once("long", b"HTTP/1.0 200 OK\r\n\r\n0123456789", Duration::ZERO);
        let e = get(&long, "/networks/abc", Duration::from_secs(5), 16).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData);
        let garbled = serve_once("garbled", b"SSH-2.0-OpenSSH\r\n\r\n", Duration::ZERO);
        let e = get(&garbled, "/networks/abc", Duration::from_secs(5), 1024).unwrap_err();
        assert!(e.to_string().contains("HTTP status line"), "{e}");
        for socket in [slow, long, garbled] {
            let _ = std::fs::remove_file(&socket);
        }
        let e = get(
            Path::new("/nonexistent/ocinet.sock"),
            "/",
            Duration::from_secs(1),
            16,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
