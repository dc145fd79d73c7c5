# JupyterHub for the notebook-volumes hub scenario (tests/e2e_hub.rs, `make hub`): KubeSpawner
# spawning into a namespace the webhook guards, as the hub's own service account (the kubeconfig in
# $KUBECONFIG holds its token). Everything listens on 127.0.0.1; the harness chooses the ports.
#
# Notebook pods use the host's network (hostNetwork) and each its own port on 127.0.0.1: the test
# node gives pods an address on a bridge with no route, and this keeps it that way (no gateway,
# forwarding or NAT on the machine) while the hub and the proxy reach the notebook servers.
import os
import socket

env = os.environ
c = get_config()  # noqa: F821 (provided by JupyterHub)

c.JupyterHub.bind_url = f"http://127.0.0.1:{env['NV_HUB_PROXY_PORT']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{env['NV_HUB_PORT']}"
c.JupyterHub.hub_connect_ip = "127.0.0.1"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['NV_HUB_PROXY_API_PORT']}"
# The harness runs configurable-http-proxy itself (its token in $CONFIGPROXY_AUTH_TOKEN).
c.ConfigurableHTTPProxy.should_start = False
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# A test authenticator: any of the allowed users, one shared password. Allowed users exist in
# the hub's database from the start, so they can ask for a token with their password
# (POST /hub/api/users/<name>/tokens with {"auth": {...}}).
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = env["NV_HUB_PASSWORD"]
c.Authenticator.allowed_users = set(env["NV_HUB_USERS"].split(","))

c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = env["NV_HUB_NAMESPACE"]
c.KubeSpawner.image = env["NV_HUB_IMAGE"]
c.KubeSpawner.image_pull_policy = "Never"
# The image's scripts are not installed: run the module (it is jupyterhub-singleuser).
c.KubeSpawner.cmd = ["python3", "-m", "jupyterhub.singleuser"]
# The image has no user of its own; host-path volumes belong to root.
c.KubeSpawner.uid = 0
c.KubeSpawner.args = ["--allow-root"]
c.KubeSpawner.notebook_dir = env["NV_HUB_HOME"]
c.KubeSpawner.working_dir = env["NV_HUB_HOME"]
c.KubeSpawner.environment = {"HOME": env["NV_HUB_HOME"]}
if env.get("NOTEBOOK_VOLUMES_HUB_SCREENSHOT"):
    # `make hub`: the headless browser of the screenshot signs in with the token in the URL.
    c.KubeSpawner.environment["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] = "1"
c.KubeSpawner.automount_service_account_token = False
c.KubeSpawner.ip = "127.0.0.1"
c.KubeSpawner.pod_connect_ip = "127.0.0.1"
c.KubeSpawner.extra_pod_config = {"hostNetwork": True, "terminationGracePeriodSeconds": 0}
c.KubeSpawner.start_timeout = 180
c.KubeSpawner.http_timeout = 120
# KubeSpawner names the user in the pod annotation hub.jupyter.org/username (the policy's
# usernameAnnotations); the webhook believes it because this hub's service account is a trusted
# spawner. A profile asks for a secret share through the request annotation.
c.KubeSpawner.profile_list = [
    {"display_name": "Standard", "slug": "standard", "default": True},
    {
        "display_name": "Mergers (secret share; everything else read-only)",
        "slug": "mergers",
        "kubespawner_override": {
            "extra_annotations": {"notebook-volumes.io/secret-shares": "mergers"}
        },
    },
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pre_spawn_hook(spawner):
    # Host network: each server needs a port of its own.
    spawner.port = free_port()


c.KubeSpawner.pre_spawn_hook = pre_spawn_hook
