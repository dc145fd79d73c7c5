//! A small TCP balancer standing in for a Service in front of the webhook replicas.
//!
//! Why a balancer in the test rather than a name resolving to two loopback addresses: a name
//! needs an entry in the machine's resolver (/etc/hosts, shared by everything on the machine), and
//! the API server would pick an address per connection with no notion of which replica is alive
//! or leaving. A Service does: kube-proxy picks a ready endpoint per *connection* (iptables DNAT)
//! and an endpoint leaves the rotation when its pod is deleted or stops being ready, while
//! connections already open stay where they are. This balancer does the same at layer 4 (TLS
//! passes through; the replicas' certificates are what the API server sees):
//! - a new connection goes to the next backend in rotation whose `/readyz` answered 200 at the
//!   last poll (every 100 ms, standing in for readiness probes and the endpoints update);
//! - `remove` takes a backend out at once, as deleting a pod removes its endpoint;
//! - open connections are never moved: the pinned keep-alive connections of kubernetes#127335.
//!
//! One difference, on the kind side: when connecting to a chosen backend fails (a process killed
//! a moment ago) the balancer tries the next one, where kube-proxy would fail that connection
//! until the endpoint is removed (the kubelet notices the exit within about a second).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

struct Backend {
    name: String,
    webhook: SocketAddr,
    probe: SocketAddr,
    ready: bool,
    connections: usize,
}

#[derive(Default)]
struct Pool {
    backends: Vec<Backend>,
    next: usize,
}

impl Pool {
    /// The backends to try for a new connection, in round-robin order.
    fn candidates(&mut self) -> Vec<(usize, SocketAddr)> {
        let n = self.backends.len();
        if n == 0 {
            return Vec::new();
        }
        let start = self.next % n;
        self.next = self.next.wrapping_add(1);
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| self.backends[i].ready)
            .map(|i| (i, self.backends[i].webhook))
            .collect()
    }
}

pub struct Balancer {
    pub addr: SocketAddr,
    pool: Arc<Mutex<Pool>>,
    tasks: Vec<JoinHandle<()>>,
    /// Client connections closed for want of a backend.
    pub refused: Arc<AtomicUsize>,
}

impl Balancer {
    pub async fn start() -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("balancer port");
        let addr = listener.local_addr().expect("balancer address");
        let pool = Arc::new(Mutex::new(Pool::default()));
        let refused = Arc::new(AtomicUsize::new(0));
        let accept = {
            let pool = Arc::clone(&pool);
            let refused = Arc::clone(&refused);
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let pool = Arc::clone(&pool);
                    let refused = Arc::clone(&refused);
                    tokio::spawn(async move { forward(client, pool, refused).await });
                }
            })
        };
        let probe = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                loop {
                    let probes: Vec<(String, SocketAddr)> = {
                        let pool = pool.lock().unwrap();
                        pool.backends
                            .iter()
                            .map(|b| (b.name.clone(), b.probe))
                            .collect()
                    };
                    for (name, addr) in probes {
                        let ready = is_ready(addr).await;
                        let mut pool = pool.lock().unwrap();
                        if let Some(b) = pool.backends.iter_mut().find(|b| b.name == name) {
                            b.ready = ready;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Balancer {
            addr,
            pool,
            tasks: vec![accept, probe],
            refused,
        }
    }

    /// Adds an endpoint; it takes connections once its `/readyz` answers 200.
    pub fn add(&self, name: &str, webhook: SocketAddr, probe: SocketAddr) {
        self.pool.lock().unwrap().backends.push(Backend {
            name: name.into(),
            webhook,
            probe,
            ready: false,
            connections: 0,
        });
    }

    /// Removes an endpoint (its pod was deleted); its open connections stay.
    pub fn remove(&self, name: &str) {
        self.pool
            .lock()
            .unwrap()
            .backends
            .retain(|b| b.name != name);
    }

    /// Connections each backend has been given so far.
    pub fn connections(&self) -> Vec<(String, usize)> {
        let pool = self.pool.lock().unwrap();
        pool.backends
            .iter()
            .map(|b| (b.name.clone(), b.connections))
            .collect()
    }

    /// Waits until `name` takes connections.
    pub async fn wait_ready(&self, name: &str) {
        for _ in 0..300 {
            let ready = {
                let pool = self.pool.lock().unwrap();
                pool.backends.iter().any(|b| b.name == name && b.ready)
            };
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("backend {name} not ready in the balancer after 30 s");
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn forward(mut client: TcpStream, pool: Arc<Mutex<Pool>>, refused: Arc<AtomicUsize>) {
    let candidates = pool.lock().unwrap().candidates();
    for (index, addr) in candidates {
        let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await;
        match connect {
            Ok(Ok(mut backend)) => {
                let _ = backend.set_nodelay(true);
                let _ = client.set_nodelay(true);
                {
                    let mut pool = pool.lock().unwrap();
                    if let Some(b) = pool.backends.get_mut(index).filter(|b| b.webhook == addr) {
                        b.connections += 1;
                    }
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                return;
            }
            _ => {
                let mut pool = pool.lock().unwrap();
                if let Some(b) = pool.backends.get_mut(index).filter(|b| b.webhook == addr) {
                    b.ready = false;
                }
            }
        }
    }
    refused.fetch_add(1, Ordering::Relaxed);
}

async fn is_ready(probe: SocketAddr) -> bool {
    let check = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = TcpStream::connect(probe).await.ok()?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        Some(response.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_millis(500), check)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
