//! A one-shot blocking HTTP/1.1 GET on loopback, for the scripts' polling (`/readyz`,
//! `/metrics`): no HTTP client library, `Connection: close`, read to the end; and the
//! [`Target`] every request of the load test goes to.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A target parsed from `http://HOST:PORT/PATH`.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host_header: String,
    pub path: String,
}

impl Target {
    /// Only plain `http://` on loopback addresses: this tool is for measuring servers on
    /// the same machine, never for sending load anywhere else.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        use std::net::ToSocketAddrs;
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| format!("{authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority}: no address"))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{addr}: refusing a non-loopback target (the load generator only measures local servers)"
            ));
        }
        Ok(Target {
            addr,
            host_header: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// GETs `target` and returns the status code and the (de-chunked) body.
pub fn get(target: &Target, timeout: Duration) -> Result<(u16, Vec<u8>), Error> {
    let mut stream = std::net::TcpStream::connect_timeout(&target.addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.path, target.host_header
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// Splits a whole `Connection: close` response into status and body, with `httparse`
/// reading the head and the chunk sizes (as the load generator's client does).
pub fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), Error> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(raw)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Err("no end of headers".into()),
    };
    let status = response.code.ok_or("bad status line")?;
    let mut body = &raw[head_len..];
    let mut chunked = false;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| "header value is not UTF-8")?
            .trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let length: usize = value.parse().map_err(|_| "bad Content-Length")?;
            body = body.get(..length).ok_or("body shorter than Content-Length")?;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    loop {
        let (line_len, size) = match httparse::parse_chunk_size(body).map_err(|_| "bad chunk size")? {
            httparse::Status::Complete(parsed) => parsed,
            httparse::Status::Partial => return Err("truncated chunk".into()),
        };
        body = &body[line_len..];
        if size == 0 {
            return Ok((status, out));
        }
        let size = usize::try_from(size).map_err(|_| "bad chunk size")?;
        out.extend_from_slice(body.get(..size).ok_or("truncated chunk")?);
        body = body.get(size.saturating_add(2)..).ok_or("truncated chunk")?;
    }
}

/// The value of an unlabelled Prometheus sample `name` in a text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.trim().parse().ok())?
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let (status, body) =
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello")
                .unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"hello"[..]));
        let (status, body) = parse_response(b"HTTP/1.1 503 Service Unavailable\r\n\r\nnot ready").unwrap();
        assert_eq!((status, body.as_slice()), (503, &b"not ready"[..]));
        let (_, body) = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(body, b"hello, world");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn reads_unlabelled_metrics() {
        let text = "# HELP ocsp_edge_snapshot_sequence x\n# TYPE ocsp_edge_snapshot_sequence gauge\nocsp_edge_snapshot_sequence 1764000123\nocsp_edge_snapshot_sequence_other 5\nocsp_edge_requests_total{method=\"post\"} 7\nocsp_edge_snapshot_loads_total 3\n";
        assert_eq!(metric(text, "ocsp_edge_snapshot_sequence"), Some(1_764_000_123.0));
        assert_eq!(metric(text, "ocsp_edge_snapshot_loads_total"), Some(3.0));
        assert_eq!(metric(text, "ocsp_edge_requests_total"), None);
        assert_eq!(metric(text, "missing"), None);
    }
}
