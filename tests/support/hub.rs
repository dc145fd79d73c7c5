//! A real JupyterHub with KubeSpawner and configurable-http-proxy on this machine, spawning
//! notebook servers into a test's namespace on the test node as the hub's own service account:
//! installed by tests/hub/install.sh, configured by tests/hub/jupyterhub_config.py.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{AuthInfo, Kubeconfig};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::http::{Response, WebSocket, request};
use super::webhook::HUB;
use super::{TestCluster, repo};

/// The name of the notebook server image tests/hub/install.sh builds.
pub const NOTEBOOK_SERVER_IMAGE: &str = "notebook-volumes.test/notebook-server:1";
/// The test authenticator's password (DummyAuthenticator).
const PASSWORD: &str = "notebook-volumes-test";
/// How long a notebook server may take from the start request to answering.
pub const SPAWN_TIMEOUT: Duration = Duration::from_secs(180);

/// JupyterHub and its proxy, stopped on drop.
pub struct Hub {
    /// The proxy: the hub under /hub/, users' servers under /user/<name>/.
    pub proxy: SocketAddr,
    /// The hub's log (JupyterHub and KubeSpawner).
    pub log: PathBuf,
    processes: Vec<Child>,
    _dir: tempfile::TempDir,
}

/// Where tests/hub/install.sh put JupyterHub, the proxy and the notebook server image.
pub fn install_dir() -> PathBuf {
    let images = TestCluster::shared_with_node()
        .node()
        .map(|n| n.images_dir.clone())
        .expect("this cluster runs a node");
    let out = Command::new("bash")
        .arg(repo("tests/hub/install.sh"))
        .arg(&images)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/hub/install.sh");
    assert!(out.status.success(), "tests/hub/install.sh failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("install dir").trim())
}

impl Hub {
    /// Imports the notebook server image into the node, gives the hub's service account
    /// (`jupyterhub/hub`, a trusted spawner of the example policy) the rights KubeSpawner needs in
    /// `namespace`, and starts the proxy and the hub with a kubeconfig holding that account's
    /// token; returns once the hub answers. `home`: the notebook servers' root (the home mount).
    pub async fn start(admin: &Client, namespace: &str, users: &[&str], home: &str) -> Hub {
        let cluster = TestCluster::shared_with_node();
        let install = install_dir();
        import_image(cluster, &install.join("notebook.tar"));
        let dir = tempfile::Builder::new()
            .prefix("nv-hub-")
            .tempdir()
            .expect("hub directory");
        let token = hub_token(admin, namespace).await;
        let kubeconfig = dir.path().join("kubeconfig");
        write_kubeconfig(cluster.kubeconfig_path(), &token, &kubeconfig);

        let [proxy_port, hub_port, api_port] = free_ports();
        let proxy_token = format!("proxy-{}", std::process::id());
        let log = dir.path().join("jupyterhub.log");
        let chp = keep_alive(
            Command::new(install.join("chp/node_modules/.bin/configurable-http-proxy"))
                .args(["--ip", "127.0.0.1", "--port", &proxy_port.to_string()])
                .args(["--api-ip", "127.0.0.1", "--api-port", &api_port.to_string()])
                .args([
                    "--error-target",
                    &format!("http://127.0.0.1:{hub_port}/hub/error"),
                ])
                .env("CONFIGPROXY_AUTH_TOKEN", &proxy_token),
            &dir.path().join("proxy.log"),
        );
        let hub = keep_alive(
            Command::new(install.join("venv/bin/python"))
                .args(["-m", "jupyterhub", "-f"])
                .arg(repo("tests/hub/jupyterhub_config.py"))
                .current_dir(dir.path())
                .env("KUBECONFIG", &kubeconfig)
                .env("CONFIGPROXY_AUTH_TOKEN", &proxy_token)
                .env("NV_HUB_PROXY_PORT", proxy_port.to_string())
                .env("NV_HUB_PORT", hub_port.to_string())
                .env("NV_HUB_PROXY_API_PORT", api_port.to_string())
                .env("NV_HUB_PASSWORD", PASSWORD)
                .env("NV_HUB_USERS", users.join(","))
                .env("NV_HUB_NAMESPACE", namespace)
                .env("NV_HUB_IMAGE", NOTEBOOK_SERVER_IMAGE)
                .env("NV_HUB_HOME", home),
            &log,
        );
        let hub = Hub {
            proxy: SocketAddr::from(([127, 0, 0, 1], proxy_port)),
            log,
            processes: vec![hub, chp],
            _dir: dir,
        };
        hub.wait_until_up().await;
        hub
    }

    async fn wait_until_up(&self) {
        let start = Instant::now();
        loop {
            if let Ok(r) = request(self.proxy, "GET", "/hub/api/", &[], None).await
                && r.status == 200
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "JupyterHub did not answer within 60 s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The end of the hub's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Logs `user` in through the hub's REST API (a token requested with the password).
    pub async fn login(&self, user: &str) -> User {
        let body = json!({"auth": {"username": user, "password": PASSWORD}, "note": "notebook-volumes test"});
        let path = format!("/hub/api/users/{user}/tokens");
        let r = self.call("POST", &path, None, Some(&body)).await;
        assert_eq!(r.status, 201, "login of {user}: {}", r.body);
        let token = r.json()["token"]
            .as_str()
            .expect("token in the answer")
            .to_owned();
        User {
            name: user.to_owned(),
            token,
            proxy: self.proxy,
        }
    }

    /// Starts `user`'s server with `profile` (KubeSpawner's profile_list slug), and waits until the
    /// hub reports it ready. Panics with the hub's log when it does not start.
    pub async fn start_server(&self, user: &User, profile: Option<&str>) {
        let body = profile.map(|p| json!({"profile": p}));
        let path = format!("/hub/api/users/{}/server", user.name);
        let r = self
            .call("POST", &path, Some(&user.token), body.as_ref())
            .await;
        assert!(
            r.status == 201 || r.status == 202,
            "start of {}'s server: {} {}\n{}",
            user.name,
            r.status,
            r.body,
            self.log_tail()
        );
        self.wait_for_server(user, true).await;
    }

    /// Asks for `user`'s server with `profile` and waits until the spawn has failed; returns the
    /// hub's log (where KubeSpawner reports the API server's refusal). Panics if it starts.
    pub async fn start_refused(&self, user: &User, profile: &str) -> String {
        let body = json!({"profile": profile});
        let path = format!("/hub/api/users/{}/server", user.name);
        let r = self
            .call("POST", &path, Some(&user.token), Some(&body))
            .await;
        // 202: the spawn goes on in the background; a quick failure answers 500 at once.
        assert!(
            [202, 500].contains(&r.status),
            "start of {}'s server: {} {}",
            user.name,
            r.status,
            r.body
        );
        self.wait_for_server(user, false).await;
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops `user`'s server and waits until the hub reports it gone.
    pub async fn stop_server(&self, user: &User) {
        let path = format!("/hub/api/users/{}/server", user.name);
        let r = self.call("DELETE", &path, Some(&user.token), None).await;
        assert!(
            r.status == 204 || r.status == 202,
            "stop of {}'s server: {} {}",
            user.name,
            r.status,
            r.body
        );
        self.wait_for_server(user, false).await;
    }

    async fn wait_for_server(&self, user: &User, ready: bool) {
        let start = Instant::now();
        let path = format!("/hub/api/users/{}", user.name);
        loop {
            let model = self
                .call("GET", &path, Some(&user.token), None)
                .await
                .json();
            let server = &model["servers"][""];
            let done = if ready {
                server["ready"] == Value::Bool(true)
            } else {
                server.is_null()
            };
            if done {
                return;
            }
            if ready && server.is_null() && start.elapsed() > Duration::from_secs(5) {
                panic!(
                    "{}'s server stopped while starting:\n{}",
                    user.name,
                    self.log_tail()
                );
            }
            assert!(
                start.elapsed() < SPAWN_TIMEOUT,
                "{}'s server not {} within {SPAWN_TIMEOUT:?}: {model}\n{}",
                user.name,
                if ready { "ready" } else { "stopped" },
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let auth = token.map(|t| format!("token {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        request(self.proxy, method, path, &headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log_tail()))
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Closing stdin stops each process (see keep_alive); the hub first stops its servers.
        for child in &mut self.processes {
            drop(child.stdin.take());
        }
        for child in &mut self.processes {
            let _ = child.wait();
        }
    }
}

/// A logged-in user: the REST API of their notebook server through the proxy, with their token.
pub struct User {
    pub name: String,
    pub token: String,
    proxy: SocketAddr,
}

impl User {
    /// A request to their server's Jupyter API (`path` after `/user/<name>/api/`).
    pub async fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let full = format!("/user/{}/api/{path}", self.name);
        let auth = format!("token {}", self.token);
        request(self.proxy, method, &full, &[("Authorization", &auth)], body)
            .await
            .unwrap_or_else(|e| panic!("{method} {full}: {e}"))
    }

    /// Saves a text file at `path` (relative to the server's root) as JupyterLab does.
    pub async fn save_text(&self, path: &str, text: &str) -> Response {
        let body = json!({"type": "file", "format": "text", "content": text});
        self.api("PUT", &format!("contents/{path}"), Some(&body))
            .await
    }

    /// Saves a notebook at `path`.
    pub async fn save_notebook(&self, path: &str, notebook: &Value) -> Response {
        let body = json!({"type": "notebook", "content": notebook});
        self.api("PUT", &format!("contents/{path}"), Some(&body))
            .await
    }

    /// Opens `path` with its content.
    pub async fn open(&self, path: &str) -> Response {
        self.api("GET", &format!("contents/{path}?content=1"), None)
            .await
    }

    /// Runs `code` in a new Python kernel of the server and returns what it printed (stdout and
    /// stderr streams, in order); the kernel is shut down after.
    pub async fn run_in_kernel(&self, code: &str) -> String {
        let kernel = self
            .api("POST", "kernels", Some(&json!({"name": "python3"})))
            .await;
        assert_eq!(kernel.status, 201, "kernel start: {}", kernel.body);
        let id = kernel.json()["id"].as_str().expect("kernel id").to_owned();
        let path = format!("/user/{}/api/kernels/{id}/channels", self.name);
        let auth = format!("token {}", self.token);
        let mut ws = WebSocket::connect(self.proxy, &path, &[("Authorization", &auth)])
            .await
            .expect("kernel channels");
        let msg_id = format!("nv-{}", std::process::id());
        let execute = json!({
            "header": {"msg_id": msg_id, "username": self.name, "session": "nv-test",
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": false, "store_history": false,
                        "user_expressions": {}, "allow_stdin": false, "stop_on_error": true}
        });
        ws.send(&execute.to_string())
            .await
            .expect("execute request");
        let mut printed = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, ws.receive())
                .await
                .unwrap_or_else(|_| panic!("the kernel did not finish; printed so far: {printed}"))
                .expect("kernel message");
            let message: Value = serde_json::from_str(&message).unwrap_or(Value::Null);
            if message["parent_header"]["msg_id"] != msg_id.as_str() {
                continue;
            }
            match message["msg_type"].as_str() {
                Some("stream") => {
                    printed.push_str(message["content"]["text"].as_str().unwrap_or(""))
                }
                Some("error") => {
                    printed.push_str(&format!("ERROR {}", message["content"]["evalue"]))
                }
                Some("status") if message["content"]["execution_state"] == "idle" => break,
                _ => {}
            }
        }
        let _ = self.api("DELETE", &format!("kernels/{id}"), None).await;
        printed
    }
}

/// Starts `command` with its output in `log` and a stdin pipe, wrapped so that the process gets
/// SIGTERM when the pipe closes: when the test drops it, or when the test process dies however.
fn keep_alive(command: &mut Command, log: &Path) -> Child {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let out = std::fs::File::create(log).expect("log file");
    let mut wrapper = Command::new("bash");
    wrapper
        .arg("-c")
        .arg(r#""$@" </dev/null & child=$!; read -r _; kill -TERM "$child" 2>/dev/null; wait "$child""#)
        .arg("keep-alive")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out);
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => wrapper.env(key, v),
            None => wrapper.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapper.current_dir(dir);
    }
    wrapper.spawn().expect("start a hub process")
}

fn free_ports() -> [u16; 3] {
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("port").port();
    [port(0), port(1), port(2)]
}

/// Imports the notebook server image into the test node's containerd (its own socket).
fn import_image(cluster: &TestCluster, tarball: &Path) {
    let node = cluster.node().expect("this cluster runs a node");
    let socket = node.log_dir.join("containerd/nvtestnode-containerd.sock");
    let out = Command::new("ctr")
        .arg("--address")
        .arg(&socket)
        .args(["-n", "k8s.io", "images", "import"])
        .arg(tarball)
        .output()
        .expect("run ctr");
    assert!(
        out.status.success(),
        "ctr images import {}: {}",
        tarball.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The hub's service account (namespace `jupyterhub`, name `hub`), allowed what KubeSpawner does
/// in `namespace`, and a token for it.
async fn hub_token(admin: &Client, namespace: &str) -> String {
    let (hub_ns, hub_sa) = HUB;
    let meta = |name: &str| ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    };
    let hub_namespace = Namespace {
        metadata: meta(hub_ns),
        ..Default::default()
    };
    create_unless_present(&Api::all(admin.clone()), &hub_namespace).await;
    let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), hub_ns);
    let account = ServiceAccount {
        metadata: meta(hub_sa),
        ..Default::default()
    };
    create_unless_present(&accounts, &account).await;
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "jupyterhub"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
             "verbs": ["get", "watch", "list", "create", "delete"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]}
        ]
    }))
    .expect("Role");
    Api::<Role>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .expect("Role");
    let binding = RoleBinding {
        metadata: meta("jupyterhub"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "jupyterhub".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: hub_sa.into(),
            namespace: Some(hub_ns.into()),
            api_group: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .expect("RoleBinding");
    let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": 7200}});
    let answer: Value = accounts
        .create_subresource("token", hub_sa, &PostParams::default(), &request)
        .await
        .expect("TokenRequest for the hub's service account");
    answer["status"]["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Creates `object`, keeping the one already there (409: it exists).
async fn create_unless_present<K>(api: &Api<K>, object: &K)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("{e}"),
    }
}

/// The admin kubeconfig with its user replaced by `token`: the hub acts as its service account.
fn write_kubeconfig(admin: &Path, token: &str, out: &Path) {
    let mut config = Kubeconfig::read_from(admin).expect("admin kubeconfig");
    for named in &mut config.auth_infos {
        named.auth_info = Some(AuthInfo {
            token: Some(token.to_owned().into()),
            ..Default::default()
        });
    }
    let text = serde_json::to_string(&config).expect("kubeconfig");
    std::fs::write(out, text).expect("hub kubeconfig");
}
