//! Origins a responder replicates from: a hostile HTTP mirror and a man in the middle.

use super::*;

/// A hostile HTTP mirror on 127.0.0.1: serves the files of a directory (query strings
/// ignored, one request per connection), except that it can serve chosen bytes under a
/// name (a forged manifest) and drip a file one byte at a time.
pub struct Mirror {
    pub addr: SocketAddr,
    shared: std::sync::Arc<MirrorShared>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct MirrorShared {
    dir: PathBuf,
    /// Files sent one byte per interval, by name.
    drip: std::sync::Mutex<std::collections::HashMap<String, Duration>>,
    /// Served instead of the directory's file of that name.
    overrides: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// Paths requested, in order.
    log: std::sync::Mutex<Vec<String>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Mirror {
    pub fn start(dir: &Path) -> Mirror {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shared = std::sync::Arc::new(MirrorShared {
            dir: dir.to_path_buf(),
            drip: std::sync::Mutex::new(Default::default()),
            overrides: std::sync::Mutex::new(Default::default()),
            log: std::sync::Mutex::new(Vec::new()),
            stop: stop.clone(),
        });
        let serving = shared.clone();
        let thread = std::thread::spawn(move || {
            while !serving.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let serving = serving.clone();
                        std::thread::spawn(move || {
                            let _ = serving.serve(stream);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Mirror {
            addr,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// From now on, the file `name` is sent one byte per `every`.
    pub fn drip(&self, name: &str, every: Duration) {
        self.shared.drip.lock().unwrap().insert(name.to_string(), every);
    }

    /// Serves `bytes` under `name` instead of the directory's file.
    pub fn serve_bytes(&self, name: &str, bytes: Vec<u8>) {
        self.shared
            .overrides
            .lock()
            .unwrap()
            .insert(name.to_string(), bytes);
    }

    /// Requests for paths ending in `suffix`.
    pub fn requests(&self, suffix: &str) -> usize {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.ends_with(suffix))
            .count()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl MirrorShared {
    fn serve(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buffer)?;
            if n == 0 || head.len() > 64 * 1024 {
                return Ok(());
            }
            head.extend_from_slice(&buffer[..n]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let target = text.split(' ').nth(1).unwrap_or("/");
        let path = target.split('?').next().unwrap_or("").to_string();
        let name = path.trim_start_matches('/').to_string();
        self.log.lock().unwrap().push(path);
        let overridden = self.overrides.lock().unwrap().get(&name).cloned();
        let body = overridden.or_else(|| {
            (!name.is_empty() && !name.contains('/') && !name.starts_with('.'))
                .then(|| std::fs::read(self.dir.join(&name)).ok())
                .flatten()
        });
        let Some(body) = body else {
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        let drip = self.drip.lock().unwrap().get(&name).copied();
        match drip {
            Some(every) => {
                for byte in body {
                    if self.stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return Ok(());
                    }
                    stream.write_all(&[byte])?;
                    std::thread::sleep(every);
                }
            }
            _ => stream.write_all(&body)?,
        }
        stream.flush()
    }
}

/// Reads one HTTP/1.1 request from `stream`: (request head, body by Content-Length).
/// `None` when the client closed the connection first.
pub fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        received.extend_from_slice(&chunk[..n]);
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while received.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        received.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    Ok(Some((head, received[head_end..head_end + length].to_vec())))
}

/// What an [`Interceptor`] does with one answer: gets the request path and the upstream's
/// answer, returns what the client receives.
pub type Rewrite = dyn Fn(&str, HttpResponse) -> HttpResponse + Send + Sync;

/// An HTTP man in the middle on 127.0.0.1: forwards each request (one per connection) to
/// `upstream` and hands the answer to a rewrite function before passing it on. Stops
/// accepting when dropped.
pub struct Interceptor {
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Interceptor {
    pub fn start(upstream: SocketAddr, rewrite: std::sync::Arc<Rewrite>) -> Interceptor {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let rewrite = rewrite.clone();
                        std::thread::spawn(move || {
                            let _ = intercept_one(stream, upstream, &*rewrite);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Interceptor {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Interceptor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn intercept_one(mut stream: TcpStream, upstream: SocketAddr, rewrite: &Rewrite) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let Some((head, body)) = read_request(&mut stream)? else {
        return Ok(());
    };
    let mut lines = head.lines();
    let mut words = lines.next().unwrap_or_default().split_whitespace();
    let (method, path) = (words.next().unwrap_or("GET"), words.next().unwrap_or("/"));
    // Every request header but those that describe this hop.
    let hop = ["host", "content-length", "connection", "transfer-encoding"];
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim()))
        .filter(|(name, _)| !hop.contains(&name.to_ascii_lowercase().as_str()))
        .collect();
    let body = (method == "POST").then_some(body.as_slice());
    let answer = Conn::try_connect(upstream)?.request(method, path, &headers, body)?;
    let answer = rewrite(path, answer);
    let mut out = format!("HTTP/1.1 {} Intercepted\r\n", answer.status);
    for (name, value) in &answer.headers {
        if !["content-length", "connection", "transfer-encoding"].contains(&name.as_str()) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.body.len()
    ));
    stream.write_all(out.as_bytes())?;
    stream.write_all(&answer.body)?;
    stream.flush()
}
