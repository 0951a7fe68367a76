//! A tiny raw HTTP/1.1 client, for header- and connection-level checks.

use super::*;

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(n, _)| *n == name).count()
    }
}

/// One client connection that can carry several requests (keep-alive).
pub struct Conn {
    pub stream: TcpStream,
    /// Bytes read but not yet consumed.
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        Conn::try_connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one request and reads its response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<HttpResponse> {
        self.send(&request_bytes(method, path, headers, body))?;
        self.read_response(method == "HEAD")
    }

    pub fn post(&mut self, body: &[u8]) -> std::io::Result<HttpResponse> {
        self.request(
            "POST",
            "/",
            &[("Content-Type", "application/ocsp-request")],
            Some(body),
        )
    }

    /// A POST as a cache tier sends it: asking the hub which sequence answered.
    pub fn post_as_cache(&mut self, body: &[u8]) -> std::io::Result<HttpResponse> {
        self.request(
            "POST",
            "/",
            &[
                ("Content-Type", "application/ocsp-request"),
                ("OCSP-Edge-Sequence", "?"),
            ],
            Some(body),
        )
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Where `delimiter` starts in the buffer, reading until it arrives.
    fn find_buffered(&mut self, delimiter: &[u8]) -> std::io::Result<usize> {
        loop {
            if let Some(pos) = find(&self.buf, delimiter) {
                return Ok(pos);
            }
            if self.fill()? == 0 {
                return Err(Self::eof());
            }
        }
    }

    /// Reads until the buffer holds at least `len` bytes.
    fn buffer_at_least(&mut self, len: usize) -> std::io::Result<()> {
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(Self::eof());
            }
        }
        Ok(())
    }

    fn eof() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed")
    }

    /// Reads one response; `head` = it answers a HEAD request (no body follows).
    pub fn read_response(&mut self, head: bool) -> std::io::Result<HttpResponse> {
        let end = self.find_buffered(b"\r\n\r\n")?;
        let head_text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut response = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(response);
        }
        if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().map_err(std::io::Error::other)?;
            self.buffer_at_least(len)?;
            response.body = self.buf.drain(..len).collect();
        } else if response
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            response.body = self.read_chunked()?;
        } else {
            while self.fill()? > 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    fn read_chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = self.find_buffered(b"\r\n")?;
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(std::io::Error::other)?;
            self.buf.drain(..line_end + 2);
            self.buffer_at_least(size + 2)?;
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    /// Waits up to `limit` for the server to close the connection: true if it did (read
    /// returned 0 or a reset), false if the connection was still open at the deadline.
    pub fn closed_by_server_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut chunk = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue, // e.g. a 408 before closing; keep reading
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The bytes of one HTTP/1.1 request (Content-Length added when there is a body).
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// One request on a fresh connection.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    Conn::connect(addr)
        .request(method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

pub fn post(addr: SocketAddr, body: &[u8]) -> HttpResponse {
    http(
        addr,
        "POST",
        "/",
        &[("Content-Type", "application/ocsp-request")],
        Some(body),
    )
}

pub fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http(addr, "GET", path, &[], None)
}

/// A GET on a fresh connection that may fail (a server that is not up yet, or gone).
pub fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpResponse> {
    Conn::try_connect(addr)?.request("GET", path, &[], None)
}

/// One request with `Connection: close` on a fresh connection, read until the server
/// closes it: every byte sent after the header block is in `body`, whatever the headers
/// claim (so a test sees a HEAD or 304 that wrongly carries a body).
pub fn http_close(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let what = format!("{method} {path}");
    let mut conn = Conn::connect(addr);
    let mut with_close = headers.to_vec();
    with_close.push(("Connection", "close"));
    conn.send(&request_bytes(method, path, &with_close, body))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut response = conn.read_response(true).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut rest = std::mem::take(&mut conn.buf);
    conn.stream
        .read_to_end(&mut rest)
        .unwrap_or_else(|e| panic!("{what}: reading to the end: {e}"));
    response.body = rest;
    response
}
