"""Secrets never travel as parameters: the lineage store's password comes from the
environment ($EXAMPLEGEN_MLMD_PASSWORD, e.g. from a Kubernetes secret) or from Secret
Manager ($EXAMPLEGEN_MLMD_PASSWORD_SECRET, on Vertex AI).

Secret Manager has no emulator; `secret_manager_api` serves the two calls involved (the
OAuth token exchange and `GET /v1/{name}:access`) on loopback, and google-auth's real
client code talks to it with a service-account key file made for the test.
"""

import base64
import http.server
import json
import os
import threading
import urllib.parse

import pytest

from examplegen import secret_manager
from examplegen.errors import ConfigError, ExampleGenError
from examplegen.lineage import StoreConfig, open_store

SECRET = "projects/p1/secrets/mlmd-password/versions/latest"
TOKEN = "token-for-the-test"


def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def secret_manager_api(tmp_path, monkeypatch):
    """{secret version name: value} served on 127.0.0.1; the environment points at it."""
    secrets: dict[str, str] = {}
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # the OAuth token endpoint (a service account's signed JWT grant)
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"] and form["assertion"]
            self._reply(200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})

        def do_GET(self):
            seen.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._reply(401, {"error": {"message": "no credentials"}})
            name = urllib.parse.unquote(self.path)[len("/v1/"):-len(":access")]
            if name not in secrets:
                return self._reply(404, {"error": {"message": f"Secret [{name}] not found or has no versions."}})
            data = base64.b64encode(secrets[name].encode()).decode()
            self._reply(200, {"name": name, "payload": {"data": data}})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    credentials = tmp_path / "adc.json"
    credentials.write_text(json.dumps({
        "type": "service_account", "project_id": "p1", "private_key_id": "k1", "private_key": _private_key(),
        "client_email": "pipelines@p1.iam.gserviceaccount.com", "client_id": "1", "token_uri": f"{url}/token"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    monkeypatch.setenv(secret_manager.ENDPOINT_ENV, url)
    try:
        yield secrets, seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_mlmd_password_comes_from_the_environment():
    from examplegen.lineage import StoreConfig

    env = {"EXAMPLEGEN_MLMD_PASSWORD": "s3cret"}
    assert StoreConfig.resolve("mysql://root@db:3306/mlmd", env).password == "s3cret"
    assert StoreConfig.resolve(None, {**env, "EXAMPLEGEN_MLMD": "postgresql://u@db/m"}).password == "s3cret"
    assert StoreConfig.resolve("mysql://root:other@db:3306/mlmd", env).password == "other"  # the URL's own wins
    assert StoreConfig.resolve("mysql://root@db:3306/mlmd", {}).password is None
    assert "s3cret" not in str(StoreConfig.resolve("mysql://root@db:3306/mlmd", env))


def test_the_password_from_the_environment_opens_a_real_store(monkeypatch):
    """MariaDB on 127.0.0.1:3306 (root, no password): a wrong password from the
    environment is used, and refused by the server."""
    from examplegen.lineage import open_store

    monkeypatch.setenv("EXAMPLEGEN_MLMD_PASSWORD", "not-the-password")
    with pytest.raises(ExampleGenError, match="wrong password") as caught:
        open_store("mysql://root@127.0.0.1:3306/examplegen_pw_probe")
    assert "not-the-password" not in str(caught.value)


def test_a_secret_is_read_with_the_service_credentials(secret_manager_api):
    secrets, seen = secret_manager_api
    secrets[SECRET] = "s3cret\n"  # `echo s3cret | gcloud secrets create ...` stores the newline
    assert secret_manager.access(SECRET, "$X") == "s3cret"
    assert seen == [f"/v1/{SECRET}:access"]


def test_a_missing_secret_is_a_clear_error(secret_manager_api):
    with pytest.raises(ConfigError, match=r"\$X: cannot read secret projects/p1/secrets/mlmd-password/versions/"
                                          r"latest from Secret Manager \(HTTP 404: .*secretAccessor"):
        secret_manager.access(SECRET, "$X")
    with pytest.raises(ConfigError, match=r"\$X: expected projects/PROJECT/secrets/SECRET/versions/VERSION"):
        secret_manager.access("mlmd-password", "$X")


def test_the_store_password_comes_from_secret_manager(secret_manager_api):
    secrets, _ = secret_manager_api
    secrets[SECRET] = "from-secret-manager"
    env = {"EXAMPLEGEN_MLMD_PASSWORD_SECRET": SECRET,
           secret_manager.ENDPOINT_ENV: os.environ[secret_manager.ENDPOINT_ENV]}
    config = StoreConfig.resolve("mysql://root@db:3306/mlmd", env)
    assert config.password == "from-secret-manager" and "from-secret-manager" not in str(config)
    # A password in the environment itself wins; sqlite never asks.
    assert StoreConfig.resolve("mysql://root@db:3306/mlmd", {**env, "EXAMPLEGEN_MLMD_PASSWORD": "e"}).password == "e"
    assert StoreConfig.resolve("sqlite:///x.sqlite", env).password is None


def test_the_secret_reaches_the_database_server(secret_manager_api, monkeypatch):
    """MariaDB on 127.0.0.1:3306 takes root without a password: the wrong password from
    Secret Manager is sent, and the server refuses it."""
    secrets, _ = secret_manager_api
    secrets[SECRET] = "not-the-password"
    monkeypatch.setenv("EXAMPLEGEN_MLMD_PASSWORD_SECRET", SECRET)
    with pytest.raises(ExampleGenError, match="wrong password") as caught:
        open_store("mysql://root@127.0.0.1:3306/examplegen_secret_probe")
    assert "not-the-password" not in str(caught.value)


def test_the_readme_kubernetes_secret_snippet_compiles_without_the_password(tmp_path):
    """The README's kfp-kubernetes example: the secret is referenced by name in the
    platform spec; no password is in the compiled YAML."""
    import yaml
    from kfp import compiler, dsl, kubernetes
    from kfp.components import load_component_from_file

    from tests.helpers import REPO

    csv_example_gen = load_component_from_file(f"{REPO}/components/csv_example_gen/component.yaml")

    @dsl.pipeline(name="ingest-to-mysql-lineage")
    def ingest(input_base: str):
        task = csv_example_gen(input_base=input_base, mlmd="mysql://examplegen@mysql.kubeflow:3306/mlmd")
        kubernetes.use_secret_as_env(task, secret_name="mlmd-mysql",
                                     secret_key_to_env={"password": "EXAMPLEGEN_MLMD_PASSWORD"})

    path = tmp_path / "ingest.yaml"
    compiler.Compiler().compile(ingest, str(path))
    _, platform = yaml.safe_load_all(path.read_text())
    [executor] = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    [secret] = executor["secretAsEnv"]
    assert secret["keyToEnv"] == [{"envVar": "EXAMPLEGEN_MLMD_PASSWORD", "secretKey": "password"}]
    assert "mlmd-mysql" in json.dumps(secret)
